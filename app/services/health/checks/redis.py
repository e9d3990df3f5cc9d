"""The Redis check: ``PING`` round trip, and from ``INFO`` memory against ``maxmemory``,
clients against ``maxclients``, evictions, rejected connections and the keyspace hit ratio.

``maxmemory`` 0 means no limit, so memory is then reported but not rated. Evictions and
rejections are counters since the server started, so they are shown, not rated: one old
rejection must not mark a server degraded forever.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.schemas.targets import NetworkTarget, PercentThresholds, require_scheme
from app.services.health.checks.base import (
    CheckKind,
    Finding,
    Gauge,
    percent_of,
    rate_gauges,
    timed,
)
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentKind


class RedisTarget(NetworkTarget, PercentThresholds):
    """A Redis server; thresholds rate memory against maxmemory and clients against maxclients."""

    kind: Literal[ComponentKind.REDIS] = ComponentKind.REDIS

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, url: str) -> str:
        return require_scheme(url, ("redis", "rediss", "unix"))


_REPORTED = (
    "redis_version",
    "role",
    "uptime_in_seconds",
    "connected_clients",
    "blocked_clients",
    "maxclients",
    "used_memory",
    "maxmemory",
    "maxmemory_policy",
    "evicted_keys",
    "rejected_connections",
    "keyspace_hits",
    "keyspace_misses",
)


def figures_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """The reported figures and usage percentages from an INFO reply."""
    figures = {key: info[key] for key in _REPORTED if key in info}
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    figures["hit_ratio"] = round(hits / (hits + misses), 4) if hits + misses else None
    maxmemory = int(info.get("maxmemory", 0))
    if maxmemory:
        figures["memory_percent"] = percent_of(int(info.get("used_memory", 0)), maxmemory)
    maxclients = int(info.get("maxclients", 0))
    if maxclients:
        figures["clients_percent"] = percent_of(int(info.get("connected_clients", 0)), maxclients)
    return figures


def judge_redis(target: RedisTarget, latency_ms: float, figures: dict[str, Any]) -> Finding:
    """Rate memory against maxmemory and clients against maxclients."""
    gauges = [
        Gauge(label, figures[key])
        for label, key in (("memory", "memory_percent"), ("clients", "clients_percent"))
        if key in figures
    ]
    status, summary = rate_gauges(gauges, target)
    parts = [f"PING in {latency_ms:.1f} ms"]
    if "memory_percent" not in figures:
        parts.append("no maxmemory limit")
    if summary:
        parts.append(summary)
    return Finding(status, latency_ms, "; ".join(parts), figures)


async def probe(target: RedisTarget, context: CheckContext) -> Finding:
    """PING the server, read INFO and rate its limits."""
    # One attempt, no retries: a check reports what a client meets on its first try.
    client = Redis.from_url(
        target.url,
        socket_connect_timeout=target.timeout_s + 1.0,  # backstop; the runner ends the check
        socket_timeout=target.timeout_s + 1.0,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        # The first PING also connects; the second measures the round trip alone.
        _, connect_ms = await timed(client.ping())
        _, latency_ms = await timed(client.ping())
        info = await client.info()
    finally:
        await client.aclose()
    return judge_redis(target, latency_ms, {"connect_ms": connect_ms, **figures_from_info(info)})


KIND = CheckKind(
    target=RedisTarget,
    probe=probe,
    failures=(RedisError, OSError),
    component_type="datastore",
)
