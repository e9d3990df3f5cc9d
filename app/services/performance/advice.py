"""Turns measured bottlenecks into concrete actions, each quoting the figures behind it.

One bottleneck gives one recommendation; no bottleneck gives none. Which category fits
follows from what was measured: a slow read-only route that is hot is a caching candidate,
a slow read that is not is a query to fix, a slow write or a long tail is work to move off
the request, 5xx are errors to fix, sustained CPU or memory is scaling, and a volume that
fills up is capacity.
"""

from __future__ import annotations

from typing import Final

from app.schemas.performance import (
    Bottleneck,
    CapacityExhaustion,
    HighErrorRate,
    HighVariance,
    Recommendation,
    RecommendationCategory,
    Regression,
    ResourceSaturation,
    SlowDependency,
    SlowEndpoint,
)
from app.vocabulary.health import ComponentKind

# A read route serving at least this many requests a minute is worth a cache.
HOT_REQUESTS_PER_MINUTE: Final = 1.0
READ_METHODS: Final = frozenset({"GET", "HEAD"})
# How instants appear in the advice: to the minute, or the day of a forecast.
MINUTE: Final = "%Y-%m-%d %H:%M UTC"
DAY: Final = "%Y-%m-%d"

Advice = tuple[RecommendationCategory, str, str]


def recommend(bottlenecks: list[Bottleneck], *, pool_size: int) -> list[Recommendation]:
    """One recommendation per bottleneck, most urgent first."""
    found = []
    for bottleneck in bottlenecks:
        category, title, description = _advice(bottleneck, pool_size)
        found.append(
            Recommendation(
                category=category,
                priority=bottleneck.severity,
                title=title,
                description=description,
                service=bottleneck.service,
                target=bottleneck.target,
                bottleneck=bottleneck.kind,
                evidence={
                    "metric": bottleneck.metric,
                    "value": bottleneck.value,
                    "threshold": bottleneck.threshold,
                    **bottleneck.evidence.model_dump(mode="json"),
                },
            )
        )
    return sorted(found, key=lambda r: -r.priority.rank)


def _advice(b: Bottleneck, pool_size: int) -> Advice:
    match b:
        case SlowEndpoint():
            return _slow_endpoint(b)
        case HighVariance(evidence=e):
            return (
                RecommendationCategory.ASYNC,
                f"Take the long tail of {b.target} off the request path",
                f"{b.target}: p99 {e.p99_ms:.0f} ms is {b.value:.1f} times its median "
                f"{e.median_ms:.0f} ms over {e.requests} requests. Some calls do far more "
                "work than others: run that work in a background job (answer 202 with a job "
                "id) or bound it with a timeout and pagination.",
            )
        case HighErrorRate(evidence=e):
            return (
                RecommendationCategory.ERRORS,
                f"Fix the server errors of {b.target}",
                f"{b.target} failed {e.server_errors} of {e.requests} requests with a 5xx "
                f"({b.value:.1%}, threshold {b.threshold:.1%}). Look up the failing requests' "
                "ids in the access log and fix or guard the failing call.",
            )
        case Regression(evidence=e) if e.metric == "error_rate":
            return (
                RecommendationCategory.ERRORS,
                f"Find what made {b.target} fail more since {e.recent_since:{MINUTE}}",
                f"The 5xx share of {b.target} rose from {e.baseline:.1%} to "
                f"{e.recent:.1%} ({e.recent_requests} recent requests against "
                f"{e.baseline_requests}, p = {e.p_value:.1g}). Review what was deployed "
                "or changed upstream around then, and roll it back if it cannot be fixed fast.",
            )
        case Regression(evidence=e):
            return (
                RecommendationCategory.DATABASE,
                f"Find what slowed {b.target} down since {e.recent_since:{MINUTE}}",
                f"The {e.metric.removesuffix('_ms')} of {b.target} went from "
                f"{e.baseline:.0f} ms to {e.recent:.0f} ms ({e.ratio:.1f} times, "
                f"{e.recent_requests} recent requests, p = {e.p_value:.1g}). "
                "A new or changed query is the usual cause: compare its query plans before "
                "and after, and look for a missing index or a query run per item.",
            )
        case ResourceSaturation(evidence=e) if e.resource == "disk":
            return (
                RecommendationCategory.CAPACITY,
                "Free or add disk space",
                f"Disk use stayed at {e.mean_percent:.1f}% (peak {e.peak_percent:.1f}%) for "
                f"{e.minutes:.0f} minutes, over the {b.threshold:.0f}% threshold. Extend the "
                "volume or shorten the retention of logs and history.",
            )
        case ResourceSaturation(evidence=e):
            return (
                RecommendationCategory.SCALING,
                f"Add {b.target} capacity",
                f"{b.target.upper()} stayed at {e.mean_percent:.1f}% on average (peak "
                f"{e.peak_percent:.1f}%) for {e.minutes:.0f} minutes from "
                f"{e.started_at:{MINUTE}}, over the {b.threshold:.0f}% threshold. Add a worker "
                "or a replica, or move to a larger instance.",
            )
        case CapacityExhaustion(evidence=e):
            return (
                RecommendationCategory.CAPACITY,
                f"Plan {b.target} before it runs out around {e.full_at:{DAY}}",
                f"{b.target.capitalize()} use is {e.percent_now:.1f}% and grows "
                f"{e.growth_per_day:.2f} points a day (r² {e.r_squared:.2f} over "
                f"{e.samples} samples): full in {e.days_to_full:.1f} days. "
                + (
                    "Extend the volume or shorten retention."
                    if e.resource == "disk"
                    else "Look for a leak, or add memory."
                ),
            )
        case SlowDependency():
            return _dependency(b, pool_size)


def _slow_endpoint(b: SlowEndpoint) -> Advice:
    e = b.evidence
    figures = (
        f"{b.target} takes {e.p95_ms:.0f} ms at p95 and {e.median_ms:.0f} ms at the "
        f"median over {e.requests} requests ({e.requests_per_minute:.2f} a minute)"
    )
    if e.method not in READ_METHODS:
        return (
            RecommendationCategory.ASYNC,
            f"Move the heavy work of {b.target} to a background job",
            f"{figures}. Accept the request, queue the work and answer 202 with a job id to "
            "poll, so callers and workers are not held for seconds.",
        )
    if (e.requests_per_minute or 0.0) >= HOT_REQUESTS_PER_MINUTE:
        return (
            RecommendationCategory.CACHING,
            f"Cache the responses of {b.target}",
            f"{figures}. It only reads and is called often: a cache with even a short expiry "
            f"(or ETag revalidation) would spare most of its {e.total_time_s:.0f} s of "
            "serving time.",
        )
    return (
        RecommendationCategory.DATABASE,
        f"Speed up the reads behind {b.target}",
        f"{figures}. Examine the query plans of the queries it runs: look for a missing "
        "index, a full scan, or one query per item that a join would replace.",
    )


def _dependency(b: SlowDependency, pool_size: int) -> Advice:
    e = b.evidence
    figures = (
        f"{b.target} answers checks in {e.latency_p95_ms:.0f} ms at p95 (average "
        f"{e.latency_avg_ms:.0f} ms over {e.checks} checks, {e.failures} failed)"
    )
    if e.kind in (ComponentKind.DATABASE, ComponentKind.MONGODB):
        return (
            RecommendationCategory.DATABASE,
            f"Relieve the database {b.target}",
            f"{figures}. Check its load and slow-query log; if the connection pool "
            f"(database_pool_size {pool_size}) is saturated, raise it or shorten transactions.",
        )
    if e.kind == ComponentKind.REDIS:
        return (
            RecommendationCategory.SCALING,
            f"Scale the Redis server {b.target}",
            f"{figures}. Redis should answer in a millisecond or two: check its CPU, memory "
            "and slow log, and give it more resources or a replica.",
        )
    return (
        RecommendationCategory.CACHING,
        f"Cache what you fetch from {b.target}",
        f"{figures}. Keep its answers in a cache with a short expiry and call it with a "
        "timeout, so its slowness does not become yours.",
    )
