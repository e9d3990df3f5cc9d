"""``GET /metrics``: the request counts and latency histograms this process recorded, per
service (its own and those whose figures it received), the last health status of every
component, and the crashes of its background tasks, in the Prometheus text format.

Request counters grow as minutes are flushed to the store (every few seconds, once their
minute is complete), so they are cumulative per process and never count a request twice;
Prometheus' ``rate()`` and ``histogram_quantile()`` work on them as on any exporter's.
Histogram buckets are cut from the sketches, so they are as fine as :data:`BOUNDS_S` says,
up to two seconds and beyond, unlike an instrumentator's three default buckets.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from watchkeeper_agent.recorder import MinuteBucket

from app.db.models import ComponentState
from app.vocabulary.health import ComponentStatus
from app.vocabulary.sketch import GAMMA, QuantileSketch

# Upper bounds of the latency histogram, seconds (the 2 s of the spec's SLO among them).
BOUNDS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0)
# The sketch bucket index of each bound: bucket i holds values up to GAMMA**i ms.
_LIMITS: Final = [math.ceil(math.log(bound * 1000.0) / math.log(GAMMA)) for bound in BOUNDS_S]
UP_STATUSES: Final = frozenset({ComponentStatus.HEALTHY, ComponentStatus.DEGRADED})


def cumulative_counts(sketch: QuantileSketch) -> list[int]:
    """How many values are at most each of :data:`BOUNDS_S` (to the sketch's bucket width)."""
    counts = [0] * len(_LIMITS)
    for index, count in sketch.bins.items():
        position = bisect.bisect_left(_LIMITS, index)
        if position < len(_LIMITS):
            counts[position] += count
    # Zero-bucket values (under a nanosecond) lie below every bound.
    return list(itertools.accumulate(counts, initial=sketch.zero_count))[1:]


@dataclass
class _Series:
    count: int = 0
    sum_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BOUNDS_S))


class RequestTotals:
    """Cumulative per-process request counts, fed with every bucket the flusher stored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (service, route, method, status class) and (service, route, method)
        self._requests: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str, str], _Series] = defaultdict(_Series)

    def add(self, buckets: Sequence[MinuteBucket]) -> None:
        """Counts stored buckets (a flusher observer)."""
        with self._lock:
            for bucket in buckets:
                endpoint = (bucket.service, bucket.route, bucket.method)
                self._requests[(*endpoint, bucket.status_class)] += bucket.count
                series = self._latency[endpoint]
                series.count += bucket.count
                series.sum_ms += bucket.sum_ms
                for position, below in enumerate(cumulative_counts(bucket.sketch)):
                    series.buckets[position] += below

    def families(self) -> Iterator[Metric]:
        """The request counter and the latency histogram."""
        requests = CounterMetricFamily(
            "watchkeeper_http_requests",
            "HTTP requests served, by service, route template, method and status class.",
            labels=("service", "route", "method", "status_class"),
        )
        latency = HistogramMetricFamily(
            "watchkeeper_http_request_duration_seconds",
            "Time to serve HTTP requests, by service, route template and method.",
            labels=("service", "route", "method"),
        )
        with self._lock:
            for labels, count in sorted(self._requests.items()):
                requests.add_metric(labels, count)
            for endpoint, series in sorted(self._latency.items()):
                buckets = [
                    (_bound(bound), float(count))
                    for bound, count in zip(BOUNDS_S, series.buckets, strict=True)
                ]
                buckets.append(("+Inf", float(series.count)))
                latency.add_metric(endpoint, buckets, series.sum_ms / 1000.0)
        yield requests
        yield latency


def _bound(seconds: float) -> str:
    return repr(float(seconds))


async def component_families(session: AsyncSession) -> list[Metric]:
    """Each component's last status, whether it is up, and its last check's latency."""
    status = GaugeMetricFamily(
        "watchkeeper_component_status",
        "1 for the component's last status, 0 for the others.",
        labels=("component", "kind", "status"),
    )
    up = GaugeMetricFamily(
        "watchkeeper_component_up",
        "1 when the last check found the component healthy or degraded.",
        labels=("component", "kind"),
    )
    latency = GaugeMetricFamily(
        "watchkeeper_component_latency_seconds",
        "Latency of the component's last check.",
        labels=("component", "kind"),
    )
    for state in await session.scalars(select(ComponentState).order_by(ComponentState.component)):
        for candidate in ComponentStatus:
            status.add_metric(
                (state.component, state.kind, candidate), float(state.status is candidate)
            )
        up.add_metric((state.component, state.kind), float(state.status in UP_STATUSES))
        if state.last_latency_ms is not None:
            latency.add_metric((state.component, state.kind), state.last_latency_ms / 1000.0)
    return [status, up, latency]


def task_failure_family(failures: Mapping[str, int]) -> Metric:
    """How often each supervised background task has crashed since the process started."""
    family = CounterMetricFamily(
        "watchkeeper_task_failures",
        "Crashes of each background task since the process started.",
        labels=("task",),
    )
    for task, count in sorted(failures.items()):
        family.add_metric((task,), count)
    return family


class _Collected:
    """A collector over families built beforehand (the store read is async, collect is not)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def exposition(
    session: AsyncSession, totals: RequestTotals, task_failures: Mapping[str, int]
) -> bytes:
    """The text exposition of every family."""
    registry = CollectorRegistry(auto_describe=False)
    families = [
        *totals.families(),
        *await component_families(session),
        task_failure_family(task_failures),
    ]
    registry.register(_Collected(families))
    return generate_latest(registry)
