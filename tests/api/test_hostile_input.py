"""Hostile input: whatever an admin sends to any operation, the answer is never a 5xx.

The operations come from the app's own OpenAPI document, so an endpoint is covered the day
it is added. For each one Hypothesis draws requests: hostile path values, a query string of
declared and made-up keys with hostile values (NUL, broken percent-escapes, huge numbers,
out-of-range datetimes), and, where the operation takes a body, either arbitrary JSON or a
body shaped like the declared schema with hostile field values (a form for the login).

Hypothesis's API is synchronous, so it runs in a worker thread; every request it draws is
sent on the test's own event loop, where the app and its database engine live. Failures
are collected, not raised, so one run lists every operation that broke.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer

# About 200 requests per store, spread evenly over the operations (a few each at least).
EXAMPLES_PER_STORE = 200
REQUEST_TIMEOUT_SECONDS = 30.0
ISSUES = "/api/v1/maintenance/issues"
# The admin who sends everything; the run must not revoke, demote or deactivate it.
ACTOR = "hostile-admin"
BODY_METHODS = {"POST", "PUT", "PATCH"}

Schema = dict[str, Any]

# --- Hostile values ---------------------------------------------------------------------

HOSTILE_INTS = (
    9223372036854775808,
    9223372036854775807,
    -9223372036854775809,
    2147483648,
    2147483647,
    -2147483649,
    2**64,
    10**30,
    -1,
    0,
)
HOSTILE_DATETIMES = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "2026-02-30T00:00:00Z",
    "2026-01-01T25:61:61Z",
    "2026-01-01",
    "1e999999",
    "0",
    "-62135596800",
    "253402300800",
)
HOSTILE_TEXTS = (
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ufeff",
    "\u202e",
    "💥",
    "é" * 70,
    " ",
    "%00",
    "%zz",
    "'; DROP TABLE issues; --",
    "admin",
    "NaN",
    "-Infinity",
    "1e999999",
    "9223372036854775808",
    "null",
    "../../etc/passwd",
    "x" * 6_000,
)
# Query and form fragments that are already "encoded": broken escapes, NUL, invalid UTF-8.
RAW_FRAGMENTS = ("%00", "%zz", "%", "a%2", "%FF%FE", "%ED%A0%80", "%C0%AF", "+", "=", "&&", "%2B")
# Numbers no Python float or int round-trips: json.loads turns them into inf, 0.0 or an error.
RAW_NUMBERS = ("1e999999", "-1e999999", "1e-999999", "NaN", "Infinity", "-0", "1" + "0" * 5000)
MALFORMED_BODIES = (
    b"",
    b"{",
    b'{"a": }',
    b"\xff\xfe\x00",
    b'"\xed\xa0\x80"',
    b"[" * 100_000,
    b"[" * 5_000 + b"]" * 5_000,
    b'{"a": 1, "a": 2}',
    b"null",
)


@dataclass(frozen=True)
class RawJson:
    """A JSON token sent exactly as written (numbers Python cannot produce itself)."""

    text: str


def to_json(value: object) -> str:
    """JSON text of ``value``; lone surrogates become ``\\udxxx`` escapes, RawJson stays."""
    if isinstance(value, RawJson):
        return value.text
    if isinstance(value, dict):
        pairs = (f"{json.dumps(key)}:{to_json(item)}" for key, item in value.items())
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return json.dumps(value)


def percent(text: str) -> str:
    """``text`` percent-encoded as a client would (a lone surrogate as its raw bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


texts: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "L", "N", "P", "S", "Z"]), max_size=20),
)
datetimes: st.SearchStrategy[str] = st.sampled_from(HOSTILE_DATETIMES)
ints: st.SearchStrategy[int] = st.one_of(st.sampled_from(HOSTILE_INTS), st.integers())
numbers: st.SearchStrategy[object] = st.one_of(
    st.floats(),  # NaN and Infinity too, which json.dumps writes and json.loads accepts
    st.sampled_from((1e308, -1e308, 5e-324)),
    st.sampled_from(RAW_NUMBERS).map(RawJson),
)
json_scalars: st.SearchStrategy[object] = st.one_of(
    st.none(), st.booleans(), ints, numbers, texts, datetimes
)
json_values: st.SearchStrategy[object] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
url_values: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(RAW_FRAGMENTS),
    datetimes,  # as written: the "+14:00" of an unencoded offset reads as a space
    st.one_of(texts, datetimes, ints.map(str)).map(percent),
)


# --- Operations, from the OpenAPI document -----------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the OpenAPI document declares it."""

    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    media_type: str | None
    body_schema: Schema | None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def operations(app: FastAPI) -> list[Operation]:
    """Every operation the app documents."""
    document = app.openapi()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            content = operation.get("requestBody", {}).get("content", {})
            media_type = next(iter(content), None)
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in parameters if p["in"] == "path"),
                    query_params=tuple(p["name"] for p in parameters if p["in"] == "query"),
                    media_type=media_type,
                    body_schema=content[media_type]["schema"] if media_type else None,
                )
            )
    return found


def resolve(schema: Schema, document: Schema) -> Schema:
    """``schema`` with a top-level ``$ref`` followed."""
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def shaped(schema: Schema, document: Schema, depth: int = 0) -> st.SearchStrategy[object]:
    """A value of roughly the declared shape, with hostile contents (or of another type)."""
    schema = resolve(schema, document)
    if depth > 3:
        return json_values
    options: list[st.SearchStrategy[object]] = []
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []):
        options.append(shaped(alternative, document, depth + 1))
    kind = schema.get("type")
    if kind == "string":
        options.append(datetimes if schema.get("format") == "date-time" else texts)
    elif kind == "integer":
        options.append(ints)
    elif kind == "number":
        options.append(numbers)
    elif kind == "boolean":
        options.append(st.booleans())
    elif kind == "array":
        options.append(st.lists(shaped(schema.get("items", {}), document, depth + 1), max_size=4))
    elif kind == "object":
        options.append(shaped_object(schema, document, depth + 1))
    options.append(json_scalars)  # the wrong type now and then
    return st.one_of(options)


def shaped_object(schema: Schema, document: Schema, depth: int) -> st.SearchStrategy[object]:
    """An object with the required fields, some optional ones and maybe a stranger."""
    properties: dict[str, Schema] = schema.get("properties", {})
    required = set(schema.get("required", []))
    declared = st.fixed_dictionaries(
        {
            name: shaped(field, document, depth)
            for name, field in properties.items()
            if name in required
        },
        optional={
            name: shaped(field, document, depth)
            for name, field in properties.items()
            if name not in required
        },
    )
    strangers = st.dictionaries(texts, json_values, max_size=1)
    return st.builds(lambda known, extra: {**extra, **known}, declared, strangers)


def encoded_pairs(keys: tuple[str, ...], required: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """``k=v&k=v``: declared and made-up keys with hostile, pre-encoded values."""
    key = st.one_of(st.sampled_from(keys), texts.map(percent)) if keys else texts.map(percent)
    pair = st.tuples(key, url_values)
    fixed = st.tuples(*(st.tuples(st.just(name), url_values) for name in required))
    return st.builds(
        lambda first, rest: "&".join(f"{k}={v}" for k, v in (*first, *rest)),
        fixed,
        st.lists(pair, max_size=4),
    )


# --- Requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HostileRequest:
    """One request as it goes on the wire: the raw target (path and query) and body."""

    operation: Operation
    target: str
    body: bytes | None

    def describe(self) -> str:
        body = "" if self.body is None else f"\n    body: {self.body[:400]!r}"
        return f"    {self.operation.method} {self.target[:400]}{body}"


def path_values(operation: Operation, protected: frozenset[str]) -> st.SearchStrategy[str]:
    """Values for a path parameter; small ids only where they cannot lock the actor out."""
    candidates: st.SearchStrategy[object] = st.one_of(ints, texts, datetimes)
    if operation.method != "DELETE":
        candidates = st.one_of(st.sampled_from((1, 2, 3, "admin")), candidates)
    return candidates.map(str).filter(lambda value: value not in protected).map(percent)


def bodies(operation: Operation, document: Schema) -> st.SearchStrategy[bytes | None]:
    """What the operation's body may hold: nothing, or JSON or a form as a stranger writes."""
    if operation.method not in BODY_METHODS:
        return st.none()
    schema = resolve(operation.body_schema or {}, document)
    if operation.media_type == "application/x-www-form-urlencoded":
        fields = tuple(schema.get("properties", {}))
        form = encoded_pairs(fields, required=tuple(schema.get("required", ())))
        return form.map(str.encode)
    return st.one_of(
        shaped(schema, document).map(lambda value: to_json(value).encode()),
        json_values.map(lambda value: to_json(value).encode()),
        st.sampled_from(MALFORMED_BODIES),
    )


def requests_for(
    operation: Operation, document: Schema, protected: frozenset[str]
) -> st.SearchStrategy[HostileRequest]:
    """Hostile requests to ``operation``."""
    values = st.tuples(*(path_values(operation, protected) for _ in operation.path_params))

    def build(drawn: tuple[str, ...], query: str, body: bytes | None) -> HostileRequest:
        path = operation.path
        for name, value in zip(operation.path_params, drawn, strict=True):
            path = path.replace("{" + name + "}", value)
        return HostileRequest(operation, f"{path}?{query}" if query else path, body)

    return st.builds(
        build, values, encoded_pairs(operation.query_params), bodies(operation, document)
    )


# --- Running and judging ----------------------------------------------------------------

Send = Callable[[HostileRequest], "httpx.Response | BaseException"]


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], request: HostileRequest
) -> httpx.Response | BaseException:
    """Sends ``request`` byte for byte; what the app raised instead of answering, if it did."""
    url = client.base_url.copy_with(raw_path=request.target.encode("ascii"))
    if request.body is not None:
        media_type = request.operation.media_type or "application/json"
        headers = {**headers, "Content-Type": media_type}
    try:
        return await client.request(
            request.operation.method, url, content=request.body, headers=headers
        )
    except Exception as error:  # the ASGI transport re-raises what the app did not handle
        return error


@dataclass
class Failures:
    """Server errors, one entry per operation and kind of failure, with a first example."""

    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def record(self, request: HostileRequest, answer: httpx.Response | BaseException) -> None:
        if isinstance(answer, httpx.Response):
            if answer.status_code < 500:
                return
            kind, said = str(answer.status_code), answer.text[:300]
        else:
            kind, said = f"raised {type(answer).__name__}", str(answer).splitlines()[0][:300]
        examples = self.found.setdefault((request.operation.name, kind), [])
        if len(examples) < 2:
            examples.append(f"{request.describe()}\n    answer: {said}")

    def report(self) -> Iterator[str]:
        for (operation, kind), examples in sorted(self.found.items()):
            yield f"{operation} -> {kind}\n" + "\n".join(examples)


def explore(
    found: list[Operation], document: Schema, protected: frozenset[str], deliver: Send
) -> Failures:
    """Runs Hypothesis over every operation and returns the server errors it met."""
    failures = Failures()
    budget = settings(
        max_examples=max(4, EXAMPLES_PER_STORE // len(found)),
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for operation in found:

        @budget
        @given(request=requests_for(operation, document, protected))
        def attack(request: HostileRequest) -> None:
            failures.record(request, deliver(request))

        attack()
    return failures


@dataclass(frozen=True)
class Actor:
    """The admin who sends everything, and the values that would lock it out."""

    headers: dict[str, str]
    protected: frozenset[str]


@pytest.fixture
async def actor(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Actor:
    """A second admin with one issue on file: the run may revoke the first admin's token."""
    created = await client.post(
        "/api/v1/users", json={"username": ACTOR, "role": "admin"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    issued = await client.post(
        f"/api/v1/users/{ACTOR}/tokens", json={"name": "hostile"}, headers=admin_headers
    )
    assert issued.status_code == 201, issued.text
    headers = bearer(issued.json()["token"])
    filed = await client.post(
        ISSUES, json={"title": "Something to poke at", "issue_type": "bug"}, headers=headers
    )
    assert filed.status_code == 201, filed.text
    return Actor(headers, frozenset({ACTOR, str(issued.json()["id"])}))


class TestHostileInput:
    async def test_no_operation_answers_hostile_input_with_a_server_error(
        self, app: FastAPI, client: httpx.AsyncClient, actor: Actor
    ) -> None:
        loop = asyncio.get_running_loop()

        def deliver(request: HostileRequest) -> httpx.Response | BaseException:
            pending = asyncio.run_coroutine_threadsafe(send(client, actor.headers, request), loop)
            return pending.result(timeout=REQUEST_TIMEOUT_SECONDS)

        failures = await asyncio.to_thread(
            explore, operations(app), app.openapi(), actor.protected, deliver
        )

        if failures.found:
            pytest.fail("server errors:\n" + "\n\n".join(failures.report()), pytrace=False)
