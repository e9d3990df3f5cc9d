"""The HTTP API check: status code, an optional condition on the body, and TLS expiry.

The request goes through a client shared by the sweep (see ``make_client``); keep-alive is
off so every check pays for its own connection and TLS handshake, as a new visitor would,
and so the certificate is read fresh each time. Only the first ``BODY_LIMIT`` bytes are
read: a server that streams without end cannot hold a check past its timeout or fill memory.

The latency is the dependency's part of the request, taken from the client's own events
(see ``RoundTrip``): connecting, and waiting from the request sent to the response's
headers. Waiting for the shared pool, writing the request and reading the body are ours.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal, Self

import httpx
from pydantic import Field, JsonValue, field_validator, model_validator

from app.schemas.targets import NetworkTarget, StrictModel, require_scheme
from app.services.health.checks.base import CheckKind, Finding, one_line
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentKind, ComponentStatus


class HttpMethod(StrEnum):
    """The request methods a check may send."""

    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"


_STATUS_CLASS = re.compile(r"^[1-5]xx$")
# Redirects count as up by default: the check does not follow them unless told to.
_UP_BY_DEFAULT: list[int | str] = ["2xx", "3xx"]


class BodyCondition(StrictModel):
    """What the response body must hold: a JSON value at a path, or a piece of text."""

    json_path: str | None = Field(
        default=None, description="Dotted path into the JSON body, e.g. $.checks[0].status."
    )
    equals: JsonValue = None
    contains: str | None = None
    text_contains: str | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        if (self.json_path is None) == (self.text_contains is None):
            raise ValueError("give either json_path or text_contains")
        comparisons = {"equals", "contains"} & self.model_fields_set
        if self.json_path is None and comparisons:
            raise ValueError("equals and contains apply to json_path")
        if len(comparisons) > 1:
            raise ValueError("give at most one of equals and contains")
        return self


class HttpTarget(NetworkTarget):
    """An HTTP API: expected statuses, an optional body condition, latency and TLS expiry."""

    kind: Literal[ComponentKind.HTTP] = ComponentKind.HTTP
    method: HttpMethod = HttpMethod.GET
    headers: dict[str, str] = Field(default_factory=dict)
    expected_status: list[int | str] = Field(
        default_factory=lambda: list(_UP_BY_DEFAULT),
        description='Status codes (200) or classes ("2xx") counted as up.',
        min_length=1,
    )
    body: BodyCondition | None = None
    follow_redirects: bool = False
    verify_tls: bool = True
    ca_file: Path | None = Field(default=None, description="Extra CA bundle for private CAs.")
    cert_warn_days: int = Field(default=14, ge=0)

    @field_validator("url")
    @classmethod
    def _http_scheme(cls, url: str) -> str:
        return require_scheme(url, ("http", "https"))

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, method: object) -> object:
        return method.upper() if isinstance(method, str) else method

    @field_validator("expected_status")
    @classmethod
    def _status_specs(cls, specs: list[int | str]) -> list[int | str]:
        for spec in specs:
            if isinstance(spec, int) and not 100 <= spec <= 599:
                raise ValueError(f"{spec} is not an HTTP status code")
            if isinstance(spec, str) and not _STATUS_CLASS.match(spec):
                raise ValueError(f'{spec!r} is neither a status code nor a class like "2xx"')
        return specs

    def expects(self, status_code: int) -> bool:
        """Whether ``status_code`` counts as the API being up."""
        status_class = f"{status_code // 100}xx"
        return any(spec in (status_code, status_class) for spec in self.expected_status)


BODY_LIMIT = 1024 * 1024
_USER_AGENT = "watchkeeper-health-check"
_PATH_STEP = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_MISSING = object()


def make_client(
    *, verify_tls: bool, ca_file: Path | None, max_connections: int
) -> httpx.AsyncClient:
    """A client for many concurrent checks; timeouts are given per request."""
    verify: ssl.SSLContext | bool = verify_tls
    if verify_tls and ca_file is not None:
        verify = ssl.create_default_context()
        verify.load_verify_locations(cafile=ca_file)
    return httpx.AsyncClient(
        verify=verify,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        headers={"User-Agent": _USER_AGENT},
    )


def json_path_steps(path: str) -> list[str | int]:
    """``$.checks[0].status`` as ``["checks", 0, "status"]``."""
    steps: list[str | int] = []
    for index, key in _PATH_STEP.findall(path.removeprefix("$")):
        steps.append(int(index) if index else key)
    return steps


def lookup(document: Any, path: str) -> Any:
    """The value at ``path`` in a decoded JSON document, or ``_MISSING``."""
    value = document
    for step in json_path_steps(path):
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        in_object = isinstance(step, str) and isinstance(value, dict) and step in value
        if not (in_list or in_object):
            return _MISSING
        value = value[step]
    return value


def _same_json(left: Any, right: Any) -> bool:
    # In Python True == 1; in JSON they are different values.
    return bool(left == right) and isinstance(left, bool) == isinstance(right, bool)


def body_problem(condition: BodyCondition, body: str) -> str | None:
    """Why ``body`` fails ``condition``, or None when it holds."""
    if condition.text_contains is not None:
        return (
            None
            if condition.text_contains in body
            else (f"body does not contain {condition.text_contains!r}")
        )
    path = condition.json_path or "$"
    try:
        value = lookup(json.loads(body), path)
    except ValueError:
        return "body is not JSON"
    if value is _MISSING:
        return f"{path} not found in body"
    if "equals" in condition.model_fields_set and not _same_json(value, condition.equals):
        return f"{path} is {json.dumps(value)}, expected {json.dumps(condition.equals)}"
    if condition.contains is not None:
        haystack = value if isinstance(value, str) else json.dumps(value)
        if condition.contains not in haystack:
            return f"{path} does not contain {condition.contains!r}"
    return None


def _tls_figures(response: httpx.Response) -> dict[str, Any] | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    if not certificate:
        # Python decodes a peer certificate only after verifying it.
        return {"verified": False}
    expires = ssl.cert_time_to_seconds(certificate["notAfter"])
    return {
        "verified": True,
        "days_left": round((expires - time.time()) / 86400, 1),
        "not_after": certificate["notAfter"],
        "version": ssl_object.version(),
    }


def _certificate_rejection(exc: httpx.ConnectError) -> str | None:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message)
        cause = cause.__cause__ or cause.__context__
    return None


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= BODY_LIMIT:
            break
    return bytes(body[:BODY_LIMIT])


# A trace event that ends a part of the request the dependency answers for, and the one
# that began it (HTTP events without their "http11"/"http2" prefix).
_DEPENDENCY_PARTS: Final[Mapping[str, str]] = {
    "connection.connect_tcp.complete": "connection.connect_tcp.started",
    "connection.connect_unix_socket.complete": "connection.connect_unix_socket.started",
    "connection.start_tls.complete": "connection.start_tls.started",
    ".receive_response_headers.complete": ".send_request_body.complete",
}


class RoundTrip:
    """The parts of one check's request that the dependency answers for, from the client's
    trace events (httpx's ``trace`` request extension).

    Connecting (TCP, then TLS) and waiting for the answer (from the request having been
    sent to the response's headers having arrived) are the dependency's; building and
    writing the request, waiting for the shared pool and reading the body are ours. A
    followed redirect adds its own parts. When a transport reports no such events, the
    whole request counts.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._began = clock()
        self._marks: dict[str, float] = {}
        self._dependency_s: float | None = None

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """Called by the client as it reaches each step of the request."""
        now = self._clock()
        step = event if event.startswith("connection.") else event[event.find(".") :]
        began = self._marks.get(_DEPENDENCY_PARTS.get(step, ""))
        if began is not None:
            self._dependency_s = (self._dependency_s or 0.0) + now - began
        self._marks[step] = now

    def latency_ms(self) -> float:
        """Milliseconds the dependency took; read once the response has been read."""
        seconds = self._dependency_s
        if seconds is None:
            seconds = self._clock() - self._began
        return round(seconds * 1000.0, 2)


def judge_response(
    target: HttpTarget, status_code: int, body: str, tls: dict[str, Any] | None, latency_ms: float
) -> Finding:
    """Rate an answer: unexpected status or body is unhealthy, an expiring certificate degraded."""
    details: dict[str, Any] = {"method": target.method, "status_code": status_code}
    if tls is not None:
        details["tls"] = tls
    line = f"{target.method} {status_code} in {latency_ms:.0f} ms"
    if not target.expects(status_code):
        expected = ", ".join(str(spec) for spec in target.expected_status)
        return Finding(
            ComponentStatus.UNHEALTHY, latency_ms, f"{line}; expected {expected}", details
        )
    problem = body_problem(target.body, body) if target.body is not None else None
    if problem is not None:
        return Finding(
            ComponentStatus.UNHEALTHY, latency_ms, one_line(f"{line}; {problem}"), details
        )
    days_left = tls.get("days_left") if tls else None
    if days_left is not None and days_left < target.cert_warn_days:
        return Finding(
            ComponentStatus.DEGRADED,
            latency_ms,
            f"{line}; TLS certificate expires in {days_left:.0f} days",
            details,
        )
    return Finding(ComponentStatus.HEALTHY, latency_ms, line, details)


async def probe(target: HttpTarget, context: CheckContext) -> Finding:
    """Send the target's request through the sweep's client for its TLS settings and rate
    the answer."""
    client = context.shared(
        (ComponentKind.HTTP, target.verify_tls, target.ca_file),
        lambda: make_client(
            verify_tls=target.verify_tls,
            ca_file=target.ca_file,
            max_connections=context.max_concurrency,
        ),
    )
    round_trip = RoundTrip(context.clock)
    try:
        async with client.stream(
            target.method,
            target.url,
            headers=target.headers,
            follow_redirects=target.follow_redirects,
            timeout=target.timeout_s + 1.0,  # backstop; the runner's timeout ends the check
            extensions={"trace": round_trip.trace},
        ) as response:
            body = await _read_capped(response)
            tls = _tls_figures(response)
    except httpx.ConnectError as exc:
        reason = _certificate_rejection(exc)
        if reason is None:
            raise
        return Finding(
            ComponentStatus.UNHEALTHY,
            None,
            f"TLS certificate rejected: {reason} "
            "(trust its CA with ca_file, or set verify_tls = false)",
            {"method": target.method, "tls": {"verified": False, "error": reason}},
        )
    latency_ms = round_trip.latency_ms()
    text = body.decode(response.encoding or "utf-8", errors="replace")
    return judge_response(target, response.status_code, text, tls, latency_ms)


KIND = CheckKind(
    target=HttpTarget,
    probe=probe,
    failures=(httpx.HTTPError, OSError),
    component_type="component",
)
