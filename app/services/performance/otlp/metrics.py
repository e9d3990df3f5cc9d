"""OTLP metric exports turned into typed HTTP server duration histogram points.

Read: ``http.server.request.duration`` (stable conventions, seconds) and the older
``http.server.duration`` (milliseconds), as explicit-bucket or exponential histograms, delta
or cumulative. The metric's ``unit`` (``s`` or ``ms``) wins over the name's default. Each
data point becomes a :class:`HistogramPoint` named by its attributes as
:mod:`.attributes` says; without a status code, an ``error.type`` attribute means 500, its
absence 200. Every other metric is ignored and its data points counted.

One instrumentation may send the same requests twice, and then one copy is ignored (within
one resource of one export, where the duplicate arrives): in "dup" mode the old metric next
to the stable one (the stable one is kept), and an explicit histogram next to an
exponential one of the same name (the exponential is kept: its quantiles are finer).

:attr:`HistogramPoint.stream_key` names the point's stream as the OpenTelemetry data model
does: every resource attribute (two replicas of one service differ by
``service.instance.id``), the instrumentation scope, the metric name and kind, and the
point's attribute set. Cumulative points are differenced per stream later, against stored
state; this module keeps no state.

Refused with a reason: points without a timestamp or starting after it, unspecified
temporality, a unit that is neither ``s`` nor ``ms``, negative or non-finite sums and
extremes, bucket counts that do not add up to the count, explicit bounds that are not
finite and increasing, ``bucket_counts`` not one longer than ``explicit_bounds``, values in
the negative buckets, a scale outside -10..20, more than :data:`MAX_BUCKETS` buckets, and a
status outside 100..599.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    DataPointFlags,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    ResourceMetrics,
)

from app.services.performance.otlp.attributes import (
    BAD_SERVICE_NAME,
    BAD_STATUS,
    Routes,
    attribute_identity,
    lookup,
    read_http,
    resolve_status,
    service_name,
)
from app.services.performance.otlp.common import Tally, hex_to_base64, members, parse_export
from app.services.performance.otlp.sketches import explicit_to_sketch, exponential_to_sketch
from app.vocabulary.sketch import QuantileSketch

DURATION: Final = "http.server.request.duration"
OLD_DURATION: Final = "http.server.duration"
_DEFAULT_UNIT_MS: Final = {DURATION: 1000.0, OLD_DURATION: 1.0}
_UNIT_MS: Final = {"s": 1000.0, "ms": 1.0}
# The SDK's exponential default is 160 buckets, explicit ones have 15: far below this.
MAX_BUCKETS: Final = 4096
MIN_SCALE: Final = -10
MAX_SCALE: Final = 20
_EXPLICIT: Final = "histogram"
_EXPONENTIAL: Final = "exponential_histogram"
_NO_RECORDED_VALUE: Final = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

NO_TIMESTAMP: Final = "no timestamp, or a start after it"
NO_TEMPORALITY: Final = "aggregation temporality unspecified"
BAD_UNIT: Final = "histogram unit neither s nor ms"
BAD_TOTALS: Final = "negative or non-finite sum, min or max"
COUNT_MISMATCH: Final = "count is not the sum of the bucket counts"
BAD_BOUNDS: Final = "explicit bounds not finite and increasing"
BAD_LAYOUT: Final = "bucket_counts not one longer than explicit_bounds"
NEGATIVE: Final = "values in the negative buckets"
BAD_SCALE: Final = f"exponential scale outside {MIN_SCALE}..{MAX_SCALE}"
TOO_MANY_BUCKETS: Final = f"more than {MAX_BUCKETS} buckets"


class Temporality(StrEnum):
    DELTA = "delta"
    CUMULATIVE = "cumulative"


_TEMPORALITIES: Final = {
    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: Temporality.DELTA,
    AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: Temporality.CUMULATIVE,
}


@dataclass(frozen=True, slots=True)
class ExplicitBuckets:
    """Counts in ``(bounds_ms[i-1], bounds_ms[i]]``, the first from 0, the last to +Inf."""

    bounds_ms: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ExponentialBuckets:
    """Counts in ``(base**(offset+k), base**(offset+k+1)]`` units, ``base = 2**2**-scale``."""

    scale: int
    zero_count: int
    offset: int
    counts: tuple[int, ...]
    unit_ms: float  # the histogram's unit in milliseconds


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """One data point of request durations for one route, method and status."""

    stream_key: str  # 32 hex digits
    service: str
    route: str | None  # None: the unmatched bucket
    method: str
    status_code: int
    temporality: Temporality
    start_time_unix_nano: int
    time_unix_nano: int
    count: int
    sum_ms: float | None
    min_ms: float | None
    max_ms: float | None
    buckets: ExplicitBuckets | ExponentialBuckets

    def sketch(self) -> QuantileSketch:
        """Our sketch of the point, its count exact (the error bounds are in ``sketches``)."""
        buckets = self.buckets
        if isinstance(buckets, ExplicitBuckets):
            return explicit_to_sketch(
                buckets.bounds_ms, buckets.counts, min_ms=self.min_ms, max_ms=self.max_ms
            )
        return exponential_to_sketch(
            buckets.scale,
            buckets.zero_count,
            buckets.offset,
            buckets.counts,
            unit_ms=buckets.unit_ms,
            min_ms=self.min_ms,
            max_ms=self.max_ms,
        )


@dataclass(frozen=True, slots=True)
class MetricsExport:
    """What one export held: the points, and what was ignored or refused and why."""

    points: tuple[HistogramPoint, ...]
    ignored: int  # data points of other metrics, accepted
    rejected: int
    reasons: tuple[str, ...]

    @property
    def error_message(self) -> str:
        """The reasons as one line, for ``partial_success.error_message``."""
        return "; ".join(self.reasons)


def decode_metrics(body: bytes, content_type: str | None) -> MetricsExport:
    """The duration histogram points in an OTLP metric export (already inflated)."""
    export = parse_export(body, content_type, ExportMetricsServiceRequest, _hex_ids_to_base64)
    points: list[HistogramPoint] = []
    ignored = 0
    tally = Tally("data point")
    routes = Routes(tally)
    for resource_metrics in export.resource_metrics:
        service = service_name(lookup(resource_metrics.resource.attributes))
        if service is None:
            tally.reject(BAD_SERVICE_NAME, _points_in(resource_metrics))
            continue
        resource = attribute_identity(resource_metrics.resource.attributes)
        present = _durations_present(resource_metrics)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            for metric in scope_metrics.metrics:
                kind = _duration_kind(metric)
                if kind is None or _superseded(metric.name, kind, present):
                    ignored += _point_count(metric)
                    continue
                stream = _Stream(service, (resource, scope.name, scope.version, metric.name))
                ignored += stream.read(metric, kind, points, tally, routes)
    return MetricsExport(tuple(points), ignored, tally.rejected, tally.reasons())


def _duration_kind(metric: Metric) -> str | None:
    """The histogram kind of a duration metric we read, or None for any other metric."""
    kind = metric.WhichOneof("data")
    if metric.name in _DEFAULT_UNIT_MS and kind in (_EXPLICIT, _EXPONENTIAL):
        return kind
    return None


def _durations_present(resource_metrics: ResourceMetrics) -> set[tuple[str, str]]:
    """The (name, kind) of every duration histogram the resource sends in this export."""
    return {
        (metric.name, kind)
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if (kind := _duration_kind(metric)) is not None
    }


def _superseded(name: str, kind: str, present: set[tuple[str, str]]) -> bool:
    """Whether a better copy of the same requests came along: stable name, exponential."""
    if name == OLD_DURATION and any(other == DURATION for other, _ in present):
        return True
    return kind == _EXPLICIT and (name, _EXPONENTIAL) in present


def _point_count(metric: Metric) -> int:
    """How many data points a metric of any kind holds."""
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def _points_in(resource_metrics: ResourceMetrics) -> int:
    return sum(
        _point_count(metric)
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )


class _Stream:
    """Reads one metric's points; ``identity`` is what every stream key of it starts with."""

    __slots__ = ("_identity", "_service")

    def __init__(self, service: str, identity: tuple[bytes | str, ...]) -> None:
        self._service = service
        self._identity = identity

    def read(
        self, metric: Metric, kind: str, points: list[HistogramPoint], tally: Tally, routes: Routes
    ) -> int:
        """Append the metric's valid points to ``points``; return how many were ignored."""
        data = metric.histogram if kind == _EXPLICIT else metric.exponential_histogram
        temporality = _TEMPORALITIES.get(data.aggregation_temporality)
        unit_ms = _UNIT_MS.get(metric.unit) if metric.unit else _DEFAULT_UNIT_MS[metric.name]
        if temporality is None or unit_ms is None:
            tally.reject(NO_TEMPORALITY if temporality is None else BAD_UNIT, len(data.data_points))
            return 0
        ignored = 0
        for point in data.data_points:
            if point.flags & _NO_RECORDED_VALUE:
                ignored += 1
                continue
            invalid = _invalid_totals(point)
            if invalid is not None:
                tally.reject(invalid)
                continue
            buckets = (
                _explicit(point, unit_ms)
                if isinstance(point, HistogramDataPoint)
                else _exponential(point, unit_ms)
            )
            if isinstance(buckets, str):
                tally.reject(buckets)
                continue
            route, method, status, error_type = read_http(lookup(point.attributes))
            status = resolve_status(status, error_type)
            if status is None:
                tally.reject(BAD_STATUS)
                continue
            points.append(
                HistogramPoint(
                    stream_key=self._key(kind, point.attributes),
                    service=self._service,
                    route=routes.clean(route),
                    method=method,
                    status_code=status,
                    temporality=temporality,
                    start_time_unix_nano=point.start_time_unix_nano,
                    time_unix_nano=point.time_unix_nano,
                    count=point.count,
                    sum_ms=point.sum * unit_ms if point.HasField("sum") else None,
                    min_ms=point.min * unit_ms if point.HasField("min") else None,
                    max_ms=point.max * unit_ms if point.HasField("max") else None,
                    buckets=buckets,
                )
            )
        return ignored

    def _key(self, kind: str, attributes: Any) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for part in (*self._identity, kind, attribute_identity(attributes)):
            raw = part.encode() if isinstance(part, str) else part
            digest.update(len(raw).to_bytes(4, "little") + raw)
        return digest.hexdigest()


def _invalid_totals(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> str | None:
    """Why the point's timestamps or totals are unusable, or None."""
    if not point.time_unix_nano or point.start_time_unix_nano > point.time_unix_nano:
        return NO_TIMESTAMP
    totals = [point.sum] if point.HasField("sum") else []
    if point.HasField("min"):
        totals.append(point.min)
    if point.HasField("max"):
        totals.append(point.max)
        if point.HasField("min") and point.max < point.min:
            return BAD_TOTALS
    if any(not math.isfinite(total) or total < 0 for total in totals):
        return BAD_TOTALS
    return None


def _explicit(point: HistogramDataPoint, unit_ms: float) -> ExplicitBuckets | str:
    """The point's explicit buckets in milliseconds, or why they are refused."""
    bounds = point.explicit_bounds
    counts = point.bucket_counts
    if len(counts) > MAX_BUCKETS:
        return TOO_MANY_BUCKETS
    if len(counts) != len(bounds) + 1:
        return BAD_LAYOUT
    if not _increasing(bounds):
        return BAD_BOUNDS
    if sum(counts) != point.count:
        return COUNT_MISMATCH
    return ExplicitBuckets(tuple(bound * unit_ms for bound in bounds), tuple(counts))


def _exponential(point: ExponentialHistogramDataPoint, unit_ms: float) -> ExponentialBuckets | str:
    """The point's exponential buckets, or why they are refused."""
    positive = point.positive.bucket_counts
    if not MIN_SCALE <= point.scale <= MAX_SCALE:
        return BAD_SCALE
    if len(positive) > MAX_BUCKETS:
        return TOO_MANY_BUCKETS
    if any(point.negative.bucket_counts):
        return NEGATIVE
    if point.zero_count + sum(positive) != point.count:
        return COUNT_MISMATCH
    return ExponentialBuckets(
        point.scale, point.zero_count, point.positive.offset, tuple(positive), unit_ms
    )


def _increasing(bounds: Sequence[float]) -> bool:
    return all(math.isfinite(bound) for bound in bounds) and all(
        low < high for low, high in itertools.pairwise(bounds)
    )


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite every exemplar's hex ids in an OTLP/JSON metric export."""
    for resource_metrics in members(document, "resourceMetrics", "resource_metrics"):
        for scope_metrics in members(resource_metrics, "scopeMetrics", "scope_metrics"):
            for metric in members(scope_metrics, "metrics", "metrics"):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram"):
                    data = metric.get(kind) if isinstance(metric, dict) else None
                    for point in members(data, "dataPoints", "data_points"):
                        for exemplar in members(point, "exemplars", "exemplars"):
                            hex_to_base64(exemplar, "traceId", "trace_id")
                            hex_to_base64(exemplar, "spanId", "span_id")
