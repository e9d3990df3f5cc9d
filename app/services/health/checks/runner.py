"""Runs checks: each under its own hard timeout, all of a sweep concurrently, never raising.

Whatever a probe does (refuse, hang, answer garbage, or trip over a bug of ours) becomes a
``CheckResult``: an exception its kind lists among its ``failures`` is the dependency's
own failure, ``unhealthy``; any other is ``unknown``, because then the check, not the
dependency, is what failed. Only the cancellation of the sweep itself (shutdown)
propagates, as it must. A sweep's checks are started by the context's ``LoopPacer``, no
faster than the event loop keeps up, so each one's latency is its dependency's and not our
queueing; each waits for a slot of the context before its timeout starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from app.schemas.targets import NetworkTarget, Target
from app.services.health.checks.base import Finding, describe_error
from app.services.health.checks.context import CheckContext
from app.services.health.checks.registry import kind_of
from app.vocabulary.health import CheckResult, ComponentStatus, worst_status

logger = logging.getLogger("watchkeeper.checks")


def apply_latency_limit(finding: Finding, target: Target) -> Finding:
    """Degrade an otherwise healthy finding whose round trip exceeded the target's limit."""
    if not isinstance(target, NetworkTarget) or target.degraded_latency_ms is None:
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


async def _guarded_finding(target: Target, context: CheckContext) -> Finding:
    kind = kind_of(target)
    url = target.url if isinstance(target, NetworkTarget) else None
    try:
        async with asyncio.timeout(target.timeout_s):
            return apply_latency_limit(await kind.probe(target, context), target)
    except TimeoutError:
        message = f"no answer within {target.timeout_s:g} s"
        return Finding(ComponentStatus.UNHEALTHY, None, message, {"error": "timeout"})
    except kind.failures as exc:
        error = {"error": type(exc).__name__}
        return Finding(ComponentStatus.UNHEALTHY, None, describe_error(exc, url), error)
    except Exception as exc:
        message = f"check failed: {describe_error(exc, url)}"
        logger.warning("check %s (%s) failed unexpectedly: %s", target.name, target.kind, message)
        return Finding(ComponentStatus.UNKNOWN, None, message, {"error": type(exc).__name__})


async def run_check(target: Target, context: CheckContext | None = None) -> CheckResult:
    """Check one target within its timeout; every failure comes back as a result."""
    if context is None:
        async with CheckContext() as own_context:
            return await run_check(target, own_context)
    async with context.slots:
        checked_at = datetime.now(UTC)
        finding = await _guarded_finding(target, context)
    details = finding.details
    if isinstance(target, NetworkTarget):
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
    targets: Sequence[Target], context: CheckContext | None = None
) -> list[CheckResult]:
    """Check every target concurrently, paced; results come back in the order of ``targets``."""
    if context is None:
        async with CheckContext() as own_context:
            return await run_checks(targets, own_context)
    return await context.pacer.run_all(run_check(target, context) for target in targets)
