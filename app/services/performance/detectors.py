"""Endpoint bottlenecks as pure functions of request aggregates: slow, failing, erratic,
regressed.

Each rule needs enough requests to matter (:attr:`Thresholds.min_requests`), so a route
hit twice is never "slow". A regression must also pass a one-sided two-proportion z-test:
the share of the recent requests above the baseline's own p95 (or p99, or the share of
5xx) against the baseline's share; random noise between two samples of one distribution
fails it, a 40 ms route that now takes 120 ms passes it by a wide margin. Its p-value must
be under :attr:`Thresholds.regression_significance` (0.001 by default: about z > 3.1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from app.schemas.performance import (
    Bottleneck,
    EndpointEvidence,
    ErrorRateEvidence,
    HighErrorRate,
    HighVariance,
    Regression,
    RegressionEvidence,
    Severity,
    SlowEndpoint,
)
from app.services.performance.figures import Endpoint, RequestAggregate
from app.services.performance.thresholds import Thresholds
from app.vocabulary.performance import UNMATCHED_ROUTE


def severity_of(ratio: float) -> Severity:
    """How bad a figure is by how far past its threshold it lies (``value / threshold``)."""
    if ratio >= 4:
        return Severity.CRITICAL
    if ratio >= 2:
        return Severity.HIGH
    if ratio >= 1.25:
        return Severity.MEDIUM
    return Severity.LOW


def endpoint_evidence(
    endpoint: Endpoint, aggregate: RequestAggregate, minutes: float
) -> EndpointEvidence:
    """The figures every endpoint bottleneck carries, recommendations quote them."""
    median, p95, p99 = aggregate.quantiles((0.5, 0.95, 0.99))
    return EndpointEvidence(
        service=endpoint.service,
        method=endpoint.method,
        route=endpoint.route,
        requests=aggregate.requests,
        requests_per_minute=round(aggregate.requests / minutes, 3) if minutes else None,
        median_ms=median,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=round(aggregate.max_ms, 3),
        error_rate=_rounded(aggregate.error_rate),
        total_time_s=round(aggregate.sum_ms / 1000, 3),
    )


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def endpoint_bottlenecks(
    aggregates: Mapping[Endpoint, RequestAggregate], thresholds: Thresholds, *, minutes: float
) -> list[Bottleneck]:
    """Slow, failing and long-tailed endpoints over a window of ``minutes``."""
    found: list[Bottleneck] = []
    for endpoint, aggregate in aggregates.items():
        if endpoint.route == UNMATCHED_ROUTE or aggregate.requests < thresholds.min_requests:
            continue
        evidence = endpoint_evidence(endpoint, aggregate, minutes)
        name, service = endpoint.name, endpoint.service
        p95, median, p99 = evidence.p95_ms, evidence.median_ms, evidence.p99_ms
        if p95 is not None and p95 > thresholds.slow_endpoint_ms:
            found.append(
                SlowEndpoint(
                    severity=severity_of(p95 / thresholds.slow_endpoint_ms),
                    value=round(p95, 4),
                    threshold=thresholds.slow_endpoint_ms,
                    service=service,
                    target=name,
                    metric="p95_ms",
                    message=f"{name}: p95 {p95:.0f} ms over {aggregate.requests} requests "
                    f"(threshold {thresholds.slow_endpoint_ms:.0f} ms, median {median:.0f} ms)",
                    evidence=evidence,
                )
            )
        rate = aggregate.error_rate or 0.0
        if rate > thresholds.error_rate:
            found.append(
                HighErrorRate(
                    severity=severity_of(rate / thresholds.error_rate),
                    value=round(rate, 4),
                    threshold=thresholds.error_rate,
                    service=service,
                    target=name,
                    metric="error_rate",
                    message=f"{name}: {aggregate.server_errors} of {aggregate.requests} requests "
                    f"failed with 5xx ({rate:.1%}, threshold {thresholds.error_rate:.1%})",
                    evidence=ErrorRateEvidence(
                        **evidence.model_dump(), server_errors=aggregate.server_errors
                    ),
                )
            )
        if median and p99 is not None and p99 >= thresholds.variance_min_p99_ms:
            spread = p99 / median
            if spread > thresholds.variance_ratio:
                found.append(
                    HighVariance(
                        severity=severity_of(spread / thresholds.variance_ratio),
                        value=round(spread, 4),
                        threshold=thresholds.variance_ratio,
                        service=service,
                        target=name,
                        metric="p99_over_median",
                        message=f"{name}: p99 {p99:.0f} ms is {spread:.1f} times the median "
                        f"{median:.0f} ms (threshold {thresholds.variance_ratio:.0f} times)",
                        evidence=evidence,
                    )
                )
    return found


def excess_p_value(hits_before: int, n_before: int, hits_after: int, n_after: int) -> float:
    """One-sided p-value that the later share of hits exceeds the earlier one by chance."""
    pooled = (hits_before + hits_after) / (n_before + n_after)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_before + 1 / n_after))
    if spread == 0:
        return 1.0
    z = (hits_after / n_after - hits_before / n_before) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))


def _above(aggregate: RequestAggregate, value_ms: float) -> int:
    """Requests slower than ``value_ms`` (to the sketch's bucket width)."""
    share = aggregate.share_within(value_ms)
    return round(aggregate.requests * (1 - (share or 0.0)))


def regressions(
    baseline: Mapping[Endpoint, RequestAggregate],
    recent: Mapping[Endpoint, RequestAggregate],
    thresholds: Thresholds,
    *,
    recent_since: datetime,
) -> list[Bottleneck]:
    """Endpoints whose recent p95, p99 or 5xx share is significantly worse than before."""
    found: list[Bottleneck] = []
    for endpoint, now in recent.items():
        before = baseline.get(endpoint)
        if (
            endpoint.route == UNMATCHED_ROUTE
            or before is None
            or min(before.requests, now.requests) < thresholds.min_requests
        ):
            continue
        compared = _Comparison(endpoint, before, now, recent_since, thresholds)
        for metric, q in (("p95_ms", 0.95), ("p99_ms", 0.99)):
            was, became = before.quantile(q), now.quantile(q)
            if not was or became is None or became < was * thresholds.regression_ratio:
                continue
            p_value = excess_p_value(
                _above(before, was), before.requests, _above(now, was), now.requests
            )
            if p_value < thresholds.regression_significance:
                found.append(
                    compared.regression(
                        metric,
                        was,
                        became,
                        p_value,
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
            if p_value < thresholds.regression_significance:
                found.append(
                    compared.regression(
                        "error_rate",
                        was_rate,
                        rate,
                        p_value,
                        f"5xx share {was_rate:.1%} → {rate:.1%}",
                    )
                )
    return found


@dataclass(frozen=True)
class _Comparison:
    """One endpoint's baseline against its recent stretch, to report a regression of."""

    endpoint: Endpoint
    before: RequestAggregate
    now: RequestAggregate
    recent_since: datetime
    thresholds: Thresholds

    def regression(
        self, metric: str, was: float, became: float, p_value: float, change: str
    ) -> Regression:
        """The regression of ``metric`` from ``was`` to ``became``."""
        thresholds, endpoint = self.thresholds, self.endpoint
        # With a zero baseline rate the step itself is the measure.
        ratio = became / was if was else became / thresholds.regression_min_error_step
        return Regression(
            # Just past the regression ratio is already worth a look: medium, not low.
            severity=severity_of(1.25 * ratio / thresholds.regression_ratio),
            value=round(ratio, 4),
            threshold=thresholds.regression_ratio,
            service=endpoint.service,
            target=endpoint.name,
            metric=metric,
            message=f"{endpoint.name}: {change} since {self.recent_since:%Y-%m-%d %H:%M} UTC "
            f"({self.now.requests} requests against {self.before.requests} before, "
            f"p = {p_value:.1g})",
            evidence=RegressionEvidence(
                metric=metric,
                baseline=round(was, 4),
                recent=round(became, 4),
                ratio=round(ratio, 3),
                p_value=float(f"{p_value:.3g}"),
                baseline_requests=self.before.requests,
                recent_requests=self.now.requests,
                recent_since=self.recent_since,
                service=endpoint.service,
                method=endpoint.method,
                route=endpoint.route,
            ),
        )
