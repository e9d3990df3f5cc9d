"""Runs checks: each under its own hard timeout, all of a sweep concurrently, never raising.

Whatever a probe does (refuse, hang, answer garbage, or trip over a bug of ours) becomes a
``CheckResult``: a dependency's own failure is ``unhealthy``; an exception the probe did not
expect is ``unknown``, because then the check, not the dependency, is what failed. Only the
cancellation of the sweep itself (shutdown) propagates, as it must.

``CheckContext`` holds what checks share: HTTP clients, the application's own engines (keyed
by target name) and a cap on checks in flight. The cap is taken *before* a check's timeout
starts, so waiting for a slot never counts against a target as slowness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.schemas.targets import (
    DatabaseTarget,
    HttpTarget,
    MongoTarget,
    RedisTarget,
    SystemTarget,
    TargetConfig,
)
from app.services.health.checks import http, mongodb, redis, sql, system
from app.services.health.checks.base import Finding, describe_error
from app.vocabulary.health import CheckResult, ComponentStatus, worst_status

logger = logging.getLogger("watchkeeper.checks")

DEFAULT_MAX_CONCURRENCY = 512


class CheckContext:
    """Clients and limits shared by the checks of one sweep or many; close it when done."""

    def __init__(
        self,
        *,
        engines: Mapping[str, AsyncEngine] | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        self.engines: Mapping[str, AsyncEngine] = dict(engines or {})
        self.max_concurrency = max_concurrency
        self.slots = asyncio.Semaphore(max_concurrency)
        self._http_clients: dict[tuple[bool, Path | None], httpx.AsyncClient] = {}

    def http_client(self, target: HttpTarget) -> httpx.AsyncClient:
        """The shared client matching the target's TLS settings, created on first use."""
        key = (target.verify_tls, target.ca_file)
        if key not in self._http_clients:
            self._http_clients[key] = http.make_client(
                verify_tls=target.verify_tls,
                ca_file=target.ca_file,
                max_connections=self.max_concurrency,
            )
        return self._http_clients[key]

    async def aclose(self) -> None:
        """Close the clients this context opened (engines belong to their owner)."""
        clients, self._http_clients = list(self._http_clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _url_of(target: TargetConfig) -> str | None:
    return None if isinstance(target, SystemTarget) else target.url


async def _probe(target: TargetConfig, context: CheckContext) -> Finding:
    match target:
        case SystemTarget():
            return await system.probe(target)
        case DatabaseTarget():
            return await sql.probe(target, context.engines.get(target.name))
        case MongoTarget():
            return await mongodb.probe(target)
        case RedisTarget():
            return await redis.probe(target)
        case HttpTarget():
            return await http.probe(target, context.http_client(target))


_FAILURES: dict[type[object], tuple[type[BaseException], ...]] = {
    SystemTarget: system.FAILURES,
    DatabaseTarget: sql.FAILURES,
    MongoTarget: mongodb.FAILURES,
    RedisTarget: redis.FAILURES,
    HttpTarget: http.FAILURES,
}


def apply_latency_limit(finding: Finding, target: TargetConfig) -> Finding:
    """Degrade an otherwise healthy finding whose round trip exceeded the target's limit."""
    if isinstance(target, SystemTarget) or target.degraded_latency_ms is None:
        return finding
    limit = target.degraded_latency_ms
    if finding.latency_ms is None or finding.latency_ms <= limit:
        return finding
    return Finding(
        worst_status([finding.status, ComponentStatus.DEGRADED]),
        finding.latency_ms,
        f"slow: {finding.latency_ms:.0f} ms > {limit:g} ms; {finding.message}",
        finding.details,
    )


async def _guarded_finding(target: TargetConfig, context: CheckContext) -> Finding:
    url = _url_of(target)
    try:
        async with asyncio.timeout(target.timeout_s):
            return apply_latency_limit(await _probe(target, context), target)
    except TimeoutError:
        message = f"no answer within {target.timeout_s:g} s"
        return Finding(ComponentStatus.UNHEALTHY, None, message, {"error": "timeout"})
    except _FAILURES[type(target)] as exc:
        error = {"error": type(exc).__name__}
        return Finding(ComponentStatus.UNHEALTHY, None, describe_error(exc, url), error)
    except Exception as exc:
        message = f"check failed: {describe_error(exc, url)}"
        logger.warning("check %s (%s) failed unexpectedly: %s", target.name, target.kind, message)
        return Finding(ComponentStatus.UNKNOWN, None, message, {"error": type(exc).__name__})


async def run_check(target: TargetConfig, context: CheckContext | None = None) -> CheckResult:
    """Check one target within its timeout; every failure comes back as a result."""
    if context is None:
        async with CheckContext() as own_context:
            return await run_check(target, own_context)
    async with context.slots:
        checked_at = datetime.now(UTC)
        finding = await _guarded_finding(target, context)
    details = finding.details
    if not isinstance(target, SystemTarget):
        details = {"url": target.display_url, **details}
    return CheckResult(
        name=target.name,
        kind=target.kind,
        status=finding.status,
        latency_ms=finding.latency_ms,
        message=finding.message,
        details=details,
        checked_at=checked_at,
    )


async def run_checks(
    targets: Sequence[TargetConfig], context: CheckContext | None = None
) -> list[CheckResult]:
    """Check every target concurrently; results come back in the order of ``targets``."""
    if context is None:
        async with CheckContext() as own_context:
            return await run_checks(targets, own_context)
    return list(await asyncio.gather(*(run_check(target, context) for target in targets)))
