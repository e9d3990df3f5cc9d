"""Endpoint bottlenecks as pure functions of tallies: slow, failing, erratic, regressed.

Each rule needs enough requests to matter (:attr:`Thresholds.min_requests`), so a route
hit twice is never "slow". A regression must also pass a one-sided two-proportion z-test:
the share of the recent requests above the baseline's own p95 (or p99, or the share of
5xx) against the baseline's share; random noise between two samples of one distribution
fails it, a 40 ms route that now takes 120 ms passes it by a wide margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from app.core.config import Settings
from app.core.logging import UNMATCHED_ROUTE
from app.schemas.performance import Bottleneck, BottleneckKind, Severity
from app.services.performance.figures import Endpoint, Tally

# A one-sided p-value below this is a real change, not noise (about z > 3.1).
SIGNIFICANCE: Final = 0.001


@dataclass(frozen=True)
class Thresholds:
    """What counts as a bottleneck; the configurable ones come from the settings."""

    slow_endpoint_ms: float = 1000.0
    error_rate: float = 0.01
    slow_dependency_ms: float = 500.0
    cpu_percent: float = 90.0
    memory_percent: float = 90.0
    disk_percent: float = 90.0
    sustained: timedelta = timedelta(minutes=10)
    max_gap: timedelta = timedelta(minutes=2)
    min_requests: int = 20
    regression_ratio: float = 1.5
    regression_min_error_step: float = 0.01
    variance_ratio: float = 10.0
    variance_min_p99_ms: float = 100.0
    capacity_days: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """Thresholds shared with the alert rules where both judge the same thing."""
        rules = settings.alert_rules
        return cls(
            slow_endpoint_ms=settings.performance_slow_endpoint_ms,
            error_rate=settings.performance_error_rate,
            slow_dependency_ms=settings.performance_slow_dependency_ms,
            cpu_percent=rules.cpu_percent,
            memory_percent=rules.memory_percent,
            disk_percent=rules.disk_percent,
            sustained=timedelta(minutes=rules.resource_minutes),
            max_gap=timedelta(seconds=2 * settings.monitor_interval_seconds),
        )


def severity_of(ratio: float) -> Severity:
    """How bad a figure is by how far past its threshold it lies (``value / threshold``)."""
    if ratio >= 4:
        return Severity.CRITICAL
    if ratio >= 2:
        return Severity.HIGH
    if ratio >= 1.25:
        return Severity.MEDIUM
    return Severity.LOW


def endpoint_name(endpoint: Endpoint) -> str:
    method, route = endpoint
    return f"{method} {route}"


def endpoint_evidence(endpoint: Endpoint, tally: Tally, minutes: float) -> dict[str, Any]:
    """The figures every endpoint bottleneck carries, recommendations quote them."""
    method, route = endpoint
    return {
        "method": method,
        "route": route,
        "requests": tally.requests,
        "requests_per_minute": round(tally.requests / minutes, 3) if minutes else None,
        "median_ms": tally.quantile(0.5),
        "p95_ms": tally.quantile(0.95),
        "p99_ms": tally.quantile(0.99),
        "max_ms": round(tally.max_ms, 3),
        "error_rate": _rounded(tally.error_rate),
        "total_time_s": round(tally.sum_ms / 1000, 3),
    }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def endpoint_bottlenecks(
    tallies: Mapping[Endpoint, Tally], thresholds: Thresholds, *, minutes: float
) -> list[Bottleneck]:
    """Slow, failing and long-tailed endpoints over a window of ``minutes``."""
    found: list[Bottleneck] = []
    for endpoint, tally in tallies.items():
        if endpoint[1] == UNMATCHED_ROUTE or tally.requests < thresholds.min_requests:
            continue
        evidence = endpoint_evidence(endpoint, tally, minutes)
        name = endpoint_name(endpoint)
        p95, median, p99 = evidence["p95_ms"], evidence["median_ms"], evidence["p99_ms"]
        if p95 is not None and p95 > thresholds.slow_endpoint_ms:
            found.append(
                _bottleneck(
                    BottleneckKind.SLOW_ENDPOINT,
                    name,
                    "p95_ms",
                    p95,
                    thresholds.slow_endpoint_ms,
                    f"{name}: p95 {p95:.0f} ms over {tally.requests} requests "
                    f"(threshold {thresholds.slow_endpoint_ms:.0f} ms, median {median:.0f} ms)",
                    evidence,
                )
            )
        rate = tally.error_rate or 0.0
        if rate > thresholds.error_rate:
            found.append(
                _bottleneck(
                    BottleneckKind.HIGH_ERROR_RATE,
                    name,
                    "error_rate",
                    rate,
                    thresholds.error_rate,
                    f"{name}: {tally.server_errors} of {tally.requests} requests failed with 5xx "
                    f"({rate:.1%}, threshold {thresholds.error_rate:.1%})",
                    {**evidence, "server_errors": tally.server_errors},
                )
            )
        if median and p99 is not None and p99 >= thresholds.variance_min_p99_ms:
            spread = p99 / median
            if spread > thresholds.variance_ratio:
                found.append(
                    _bottleneck(
                        BottleneckKind.HIGH_VARIANCE,
                        name,
                        "p99_over_median",
                        spread,
                        thresholds.variance_ratio,
                        f"{name}: p99 {p99:.0f} ms is {spread:.1f} times the median "
                        f"{median:.0f} ms (threshold {thresholds.variance_ratio:.0f} times)",
                        evidence,
                    )
                )
    return found


def _bottleneck(
    kind: BottleneckKind,
    target: str,
    metric: str,
    value: float,
    threshold: float,
    message: str,
    evidence: dict[str, Any],
    severity: Severity | None = None,
) -> Bottleneck:
    return Bottleneck(
        kind=kind,
        severity=severity or severity_of(value / threshold),
        target=target,
        metric=metric,
        value=round(value, 4),
        threshold=threshold,
        message=message,
        evidence=evidence,
    )


def excess_p_value(hits_before: int, n_before: int, hits_after: int, n_after: int) -> float:
    """One-sided p-value that the later share of hits exceeds the earlier one by chance."""
    pooled = (hits_before + hits_after) / (n_before + n_after)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_before + 1 / n_after))
    if spread == 0:
        return 1.0
    z = (hits_after / n_after - hits_before / n_before) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))


def _above(tally: Tally, value_ms: float) -> int:
    """Requests slower than ``value_ms`` (to the sketch's bucket width)."""
    share = tally.sketch.fraction_at_most(value_ms)
    return round(tally.requests * (1 - (share or 0.0)))


def regressions(
    baseline: Mapping[Endpoint, Tally],
    recent: Mapping[Endpoint, Tally],
    thresholds: Thresholds,
    *,
    recent_since: datetime,
) -> list[Bottleneck]:
    """Endpoints whose recent p95, p99 or 5xx share is significantly worse than before."""
    found: list[Bottleneck] = []
    for endpoint, now in recent.items():
        before = baseline.get(endpoint)
        if (
            endpoint[1] == UNMATCHED_ROUTE
            or before is None
            or min(before.requests, now.requests) < thresholds.min_requests
        ):
            continue
        name = endpoint_name(endpoint)
        for metric, q in (("p95_ms", 0.95), ("p99_ms", 0.99)):
            was, became = before.quantile(q), now.quantile(q)
            if not was or became is None or became < was * thresholds.regression_ratio:
                continue
            p_value = excess_p_value(
                _above(before, was), before.requests, _above(now, was), now.requests
            )
            if p_value < SIGNIFICANCE:
                found.append(
                    _regression(
                        name,
                        metric,
                        was,
                        became,
                        p_value,
                        before,
                        now,
                        recent_since,
                        thresholds,
                        f"{metric.removesuffix('_ms')} {was:.0f} ms → {became:.0f} ms",
                    )
                )
                break  # the p99 of a route whose p95 regressed adds nothing
        was_rate, rate = before.error_rate or 0.0, now.error_rate or 0.0
        floor = max(
            was_rate * thresholds.regression_ratio, was_rate + thresholds.regression_min_error_step
        )
        if rate >= floor:
            p_value = excess_p_value(
                before.server_errors, before.requests, now.server_errors, now.requests
            )
            if p_value < SIGNIFICANCE:
                found.append(
                    _regression(
                        name,
                        "error_rate",
                        was_rate,
                        rate,
                        p_value,
                        before,
                        now,
                        recent_since,
                        thresholds,
                        f"5xx share {was_rate:.1%} → {rate:.1%}",
                    )
                )
    return found


def _regression(
    name: str,
    metric: str,
    was: float,
    became: float,
    p_value: float,
    before: Tally,
    now: Tally,
    recent_since: datetime,
    thresholds: Thresholds,
    change: str,
) -> Bottleneck:
    # With a zero baseline rate the step itself is the measure.
    ratio = became / was if was else became / thresholds.regression_min_error_step
    return _bottleneck(
        BottleneckKind.REGRESSION,
        name,
        metric,
        ratio,
        thresholds.regression_ratio,
        f"{name}: {change} since {recent_since:%Y-%m-%d %H:%M} UTC "
        f"({now.requests} requests against {before.requests} before, p = {p_value:.1g})",
        {
            "metric": metric,
            "baseline": round(was, 4),
            "recent": round(became, 4),
            "ratio": round(ratio, 3),
            "p_value": float(f"{p_value:.3g}"),
            "baseline_requests": before.requests,
            "recent_requests": now.requests,
            "recent_since": recent_since.isoformat(),
            "method": name.split(" ", 1)[0],
            "route": name.split(" ", 1)[1],
        },
        # Just past the regression ratio is already worth a look: medium, not low.
        severity=severity_of(1.25 * ratio / thresholds.regression_ratio),
    )
