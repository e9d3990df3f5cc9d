"""What the SystemMonitor watches: component kinds and statuses, and one model per target kind.

Targets come from ``[[targets]]`` in ``watchkeeper.toml`` or the JSON list in
``WATCHKEEPER_TARGETS``. ``TargetConfig`` is a union discriminated on ``kind``; every model
forbids unknown fields so a typo stops start-up instead of being silently ignored, and
``TargetList`` (or ``parse_targets``) reports a bad entry by the target's name and the field.

URLs carry credentials, so nothing here ever shows one unmasked: ``mask_url`` hides the
password and secret-looking query values, and the models' ``repr`` uses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from app.vocabulary.health import ComponentKind

# Query parameters whose values are secrets (``?password=``, ``?api_key=``, ``?token=``...).
_SECRET_QUERY_KEY = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|key|signature|sig|credentials?)$", re.IGNORECASE
)
MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # unparseable: showing any of it could show the secret
    # rpartition rather than parts.password: MongoDB URLs list several hosts after the "@".
    userinfo, at, hosts = parts.netloc.rpartition("@")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(_SECRET_QUERY_KEY.search(key) for key, _ in pairs)
    if not (at and ":" in userinfo) and not secret_query:
        return url
    netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hosts}" if ":" in userinfo else parts.netloc
    query = parts.query
    if secret_query:
        masked = [(key, MASK if _SECRET_QUERY_KEY.search(key) else value) for key, value in pairs]
        query = urlencode(masked, safe="*")
    # Rebuilt by hand: urlunsplit drops the empty host of sqlite:////abs/path.
    return (
        f"{parts.scheme}://{netloc}{parts.path}"
        + (f"?{query}" if query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PercentThresholds(_Model):
    """A usage percentage (of memory, disk, connection limit...) at which a component worsens."""

    degraded_percent: float = Field(default=80.0, gt=0, le=100)
    unhealthy_percent: float = Field(default=95.0, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.degraded_percent > self.unhealthy_percent:
            raise ValueError("degraded_percent must not exceed unhealthy_percent")
        return self


class _Target(_Model):
    name: str = Field(min_length=1, max_length=100)
    timeout_s: float = Field(default=5.0, gt=0, le=300)


class _NetworkTarget(_Target):
    url: str = Field(min_length=1)
    degraded_latency_ms: float | None = Field(default=None, gt=0)

    @property
    def display_url(self) -> str:
        """The URL safe to show: password and secrets masked."""
        return mask_url(self.url)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # A target printed in a log or a traceback must not carry its password along.
        for key, value in super().__repr_args__():
            yield key, (self.display_url if key == "url" else value)


def _require_scheme(url: str, schemes: Sequence[str]) -> str:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in schemes:
        raise ValueError(f"URL scheme must be one of {', '.join(schemes)}")
    return url


class SystemTarget(_Target, PercentThresholds):
    """The machine Watchkeeper runs on: CPU, memory, swap and disks rated by percent used."""

    kind: Literal[ComponentKind.SYSTEM] = ComponentKind.SYSTEM
    name: str = Field(default="system", min_length=1, max_length=100)
    disks: list[str] | None = Field(
        default=None, description="Mount points to rate; default every physical partition."
    )


# Sync driver names people write by habit, mapped to the async driver that is installed.
_ASYNC_SQL_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


class DatabaseTarget(_NetworkTarget, PercentThresholds):
    """Any SQL database SQLAlchemy reaches asynchronously; thresholds rate connection use."""

    kind: Literal[ComponentKind.DATABASE] = ComponentKind.DATABASE
    degraded_transaction_s: float | None = Field(
        default=300.0, gt=0, description="A transaction open longer than this degrades."
    )

    @field_validator("url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError("expected a SQLAlchemy URL such as postgresql+asyncpg://host/db")
        return f"{_ASYNC_SQL_DRIVERS.get(scheme.lower(), scheme)}://{rest}"


class MongoTarget(_NetworkTarget, PercentThresholds):
    """A MongoDB server or replica set; thresholds rate connections against the limit."""

    kind: Literal[ComponentKind.MONGODB] = ComponentKind.MONGODB

    @field_validator("url")
    @classmethod
    def _mongo_scheme(cls, url: str) -> str:
        return _require_scheme(url, ("mongodb", "mongodb+srv"))


class RedisTarget(_NetworkTarget, PercentThresholds):
    """A Redis server; thresholds rate memory against maxmemory and clients against maxclients."""

    kind: Literal[ComponentKind.REDIS] = ComponentKind.REDIS

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, url: str) -> str:
        return _require_scheme(url, ("redis", "rediss", "unix"))


class HttpMethod(StrEnum):
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


class BodyCondition(_Model):
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


class HttpTarget(_NetworkTarget):
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
        return _require_scheme(url, ("http", "https"))

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


TargetConfig = Annotated[
    SystemTarget | DatabaseTarget | MongoTarget | RedisTarget | HttpTarget,
    Field(discriminator="kind"),
]
NetworkTarget = DatabaseTarget | MongoTarget | RedisTarget | HttpTarget

_TARGET_ADAPTER: TypeAdapter[TargetConfig] = TypeAdapter(TargetConfig)


def _describe_entry(index: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"target {name!r}" if isinstance(name, str) else f"target #{index + 1}"


def _explain(error: ErrorDetails) -> str:
    """``field: reason`` for one validation error of one target."""
    kinds = ", ".join(ComponentKind)
    if error["type"] == "union_tag_not_found":
        return f"kind: missing; must be one of {kinds}"
    if error["type"] == "union_tag_invalid":
        return f"kind: must be one of {kinds}, got {error['ctx']['tag']!r}"
    # The first element of a union error's location is the tag ("redis"); drop it.
    field = ".".join(str(part) for part in error["loc"][1:]) or "entry"
    return f"{field}: {error['msg']}"


def parse_targets(raw: object) -> list[TargetConfig]:
    """Validate a list of target mappings, naming the target and field of any mistake."""
    if not isinstance(raw, list):
        raise ValueError("targets must be a list")
    targets: list[TargetConfig] = []
    problems: list[str] = []
    for index, entry in enumerate(raw):
        try:
            targets.append(_TARGET_ADAPTER.validate_python(entry))
        except ValidationError as exc:
            where = _describe_entry(index, entry)
            problems += [f"{where}: {_explain(error)}" for error in exc.errors()]
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            problems.append(f"target {target.name!r}: name: used by more than one target")
        seen.add(target.name)
    if problems:
        raise ValueError("; ".join(problems))
    return targets


def _parse_unless_parsed(raw: object) -> object:
    if isinstance(raw, list) and all(isinstance(item, BaseModel) for item in raw):
        return raw
    return parse_targets(raw)


TargetList = Annotated[list[TargetConfig], BeforeValidator(_parse_unless_parsed)]
"""A settings field type: ``targets: TargetList = []`` validates with named errors."""
