"""The agent's settings, from arguments first and the environment second.

Three come from the environment when no argument gives them: ``WATCHKEEPER_URL`` (the
Watchkeeper server, e.g. ``https://watchkeeper.example``), ``WATCHKEEPER_TOKEN`` (an
``ingest`` token) and ``WATCHKEEPER_SERVICE`` (the name the app's requests are shown
under). Without a URL the agent records but ships nothing, which is what tests want.

A bad value passed as an argument is a programming error and raises ``ValueError`` at
start-up. A bad or incomplete environment only turns shipping off, with a warning: a
monitoring setting must never stop the app it monitors from starting.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypedDict, Unpack
from urllib.parse import urlsplit

from watchkeeper_agent.recorder import DEFAULT_EXEMPLARS, DEFAULT_MAX_BUCKETS

logger = logging.getLogger("watchkeeper_agent")

# The OpenTelemetry resource specification's fallback, which the server uses too.
UNKNOWN_SERVICE: Final = "unknown_service"
MAX_SERVICE_NAME: Final = 128
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
INGEST_PATH: Final = "/api/v1/ingest/requests"


class AgentOptions(TypedDict, total=False):
    """What an integration may be configured with; every key is optional."""

    url: str | None  # default: WATCHKEEPER_URL; None or "" records without shipping
    token: str | None  # default: WATCHKEEPER_TOKEN
    service: str  # default: WATCHKEEPER_SERVICE, else "unknown_service"
    interval_s: float  # seconds between two shipments, default 5
    timeout_s: float  # per POST, default 5
    max_backoff_s: float  # longest wait between retries while Watchkeeper is away, default 60
    max_buckets: int  # buckets held in memory before the oldest minutes are dropped
    max_batch_buckets: int  # buckets per POST, default 1000
    exemplars: int  # slowest requests kept per bucket, default 5


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Resolved settings: ``endpoint`` is None when the agent only records."""

    endpoint: str | None
    token: str | None
    service: str
    interval_s: float
    timeout_s: float
    max_backoff_s: float
    max_buckets: int
    max_batch_buckets: int
    exemplars: int

    @classmethod
    def resolve(
        cls, environ: Mapping[str, str] | None = None, **options: Unpack[AgentOptions]
    ) -> AgentConfig:
        """The settings the arguments give, completed from ``environ`` (``os.environ``)."""
        env = os.environ if environ is None else environ
        url = options["url"] if "url" in options else env.get("WATCHKEEPER_URL")
        token = options["token"] if "token" in options else env.get("WATCHKEEPER_TOKEN")
        config = cls(
            endpoint=_endpoint(url, token, url_from_argument="url" in options),
            token=token,
            service=_service(options.get("service"), env.get("WATCHKEEPER_SERVICE")),
            interval_s=options.get("interval_s", 5.0),
            timeout_s=options.get("timeout_s", 5.0),
            max_backoff_s=options.get("max_backoff_s", 60.0),
            max_buckets=options.get("max_buckets", DEFAULT_MAX_BUCKETS),
            max_batch_buckets=options.get("max_batch_buckets", 1000),
            exemplars=options.get("exemplars", DEFAULT_EXEMPLARS),
        )
        if min(config.interval_s, config.timeout_s, config.max_backoff_s) <= 0:
            raise ValueError("interval_s, timeout_s and max_backoff_s must be positive")
        if config.max_batch_buckets < 1:
            raise ValueError("max_batch_buckets must be at least 1")
        return config


def _service(argument: str | None, environment: str | None) -> str:
    """The service name: the argument's, else the environment's, else the fallback."""
    if argument is not None:
        if not _is_service_name(argument):
            raise ValueError(f"service {argument!r} is empty, too long or has control chars")
        return argument
    if environment and not _is_service_name(environment):
        logger.warning("WATCHKEEPER_SERVICE is not a usable name; using %s", UNKNOWN_SERVICE)
        return UNKNOWN_SERVICE
    return environment or UNKNOWN_SERVICE


def _is_service_name(name: str) -> bool:
    return 0 < len(name) <= MAX_SERVICE_NAME and not _CONTROL_CHARACTERS.search(name)


def _endpoint(url: str | None, token: str | None, *, url_from_argument: bool) -> str | None:
    """The ingest URL under ``url``, or None (with a warning) when shipping cannot work."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        if url_from_argument:
            raise ValueError(f"url {url!r} is not an http(s) URL")
        logger.warning("watchkeeper-agent ships nothing: WATCHKEEPER_URL is not an http(s) URL")
        return None
    if not token:
        logger.warning(
            "watchkeeper-agent ships nothing: no token (WATCHKEEPER_TOKEN, an ingest token)"
        )
        return None
    return url.rstrip("/") + INGEST_PATH
