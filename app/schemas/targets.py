"""What every monitored target shares: a name, a timeout, a URL shown only masked.

Each check kind defines its own target model next to its probe
(``app.services.health.checks.<kind>``) on the bases here; the checks' registry turns the
raw ``[[targets]]`` entries of the settings into those models. Every model forbids unknown
fields, so a typo stops start-up instead of being silently ignored.

URLs carry credentials, so nothing here ever shows one unmasked: ``mask_url`` hides the
password and secret-looking query values, and the models' ``repr`` uses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.vocabulary.performance import SERVICE_NAME_PATTERN

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


class StrictModel(BaseModel):
    """A settings model that refuses unknown fields and never changes once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PercentThresholds(StrictModel):
    """A usage percentage (of memory, disk, connection limit...) at which a component worsens."""

    degraded_percent: float = Field(default=80.0, gt=0, le=100)
    unhealthy_percent: float = Field(default=95.0, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.degraded_percent > self.unhealthy_percent:
            raise ValueError("degraded_percent must not exceed unhealthy_percent")
        return self


class Target(StrictModel):
    """What every target has; each kind narrows ``kind`` to its own name. Only a ``public``
    target is on the public status page, shown by its ``display_name`` when it has one."""

    kind: str
    name: str = Field(min_length=1, max_length=100)
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    public: bool = False
    # Shown to the public in pages, feeds and badges: printable, like a service's name.
    display_name: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=SERVICE_NAME_PATTERN
    )


class NetworkTarget(Target):
    """A dependency reached at a URL, degraded when its round trip exceeds a limit."""

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


def require_scheme(url: str, schemes: Sequence[str]) -> str:
    """``url`` unchanged if its scheme is one of ``schemes``; a ValueError otherwise."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in schemes:
        raise ValueError(f"URL scheme must be one of {', '.join(schemes)}")
    return url
