"""A watched service's HTTP duration histograms, as its OpenTelemetry SDK exports them.

Payloads come from the SDK's own MeterProvider, views and OTLP encoder; the sketches built
from them are checked against numpy's exact quantiles (``method="lower"``, the rank our
sketch answers for) within the bound each conversion documents.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality as Wire
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import (
    Aggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from app.services.performance.otlp import (
    DecodeError,
    HistogramPoint,
    Temporality,
    decode_metrics,
    explicit_to_sketch,
    exponential_to_sketch,
)
from app.services.performance.otlp.metrics import ExplicitBuckets, ExponentialBuckets
from app.vocabulary.sketch import MAX_INDEXABLE_MS, RELATIVE_ACCURACY, QuantileSketch

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DURATION = "http.server.request.duration"
OLD_DURATION = "http.server.duration"
BOUNDARIES_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
GET_ITEMS = {
    "http.request.method": "GET",
    "http.route": "/items/{id}",
    "http.response.status_code": 200,
}
QUANTILES = (0.5, 0.95, 0.99)
# Float rounding at a bucket edge may overshoot a bound by a few ulps, no more.
SLACK = 1e-9


class App:
    """One instrumented service whose metric reader we collect by hand."""

    def __init__(
        self,
        *,
        temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE,
        aggregation: Aggregation | None = None,
        resource: Mapping[str, Any] | None = None,
        views: Sequence[View] = (),
    ) -> None:
        self.reader = InMemoryMetricReader(preferred_temporality={Histogram: temporality})
        default = View(
            instrument_name="http.server.*",
            aggregation=aggregation or ExplicitBucketHistogramAggregation(BOUNDARIES_S),
        )
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource(dict(resource or {"service.name": "shop"})),
            views=list(views) or [default],
        )
        self.meter = self.provider.get_meter("tests.otlp")

    def histogram(self, name: str = DURATION, unit: str = "s", meter: str = "tests.otlp") -> Any:
        return self.provider.get_meter(meter).create_histogram(name, unit=unit)

    def export(self) -> ExportMetricsServiceRequest:
        data = self.reader.get_metrics_data()
        assert data is not None
        return encode_metrics(data)


@pytest.fixture
def app() -> Iterator[App]:
    application = App()
    yield application
    application.provider.shutdown()


def decode(message: ExportMetricsServiceRequest) -> Any:
    return decode_metrics(message.SerializeToString(), PROTOBUF)


def first_point(message: ExportMetricsServiceRequest) -> Any:
    """The first data point of the first metric, to alter for a hostile variant."""
    metric = message.resource_metrics[0].scope_metrics[0].metrics[0]
    kind = metric.WhichOneof("data")
    assert kind is not None
    return getattr(metric, kind).data_points[0]


def estimate(sketch: QuantileSketch, q: float) -> float:
    value = sketch.quantile(q)
    assert value is not None
    return value


def otlp_json(message: ExportMetricsServiceRequest) -> bytes:
    """The OTLP/JSON encoding: camelCase, enums as integers, exemplar ids in hex."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    for resource_metrics in document["resourceMetrics"]:
        for scope_metrics in resource_metrics["scopeMetrics"]:
            for metric in scope_metrics["metrics"]:
                for kind in ("histogram", "exponentialHistogram", "sum", "gauge"):
                    for point in metric.get(kind, {}).get("dataPoints", []):
                        for exemplar in point.get("exemplars", []):
                            for key in ("traceId", "spanId"):
                                exemplar[key] = base64.b64decode(exemplar[key]).hex()
    return json.dumps(document).encode()


def lognormal(count: int, median_ms: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(median_ms), 0.9, count)


class TestExplicitHistograms:
    def test_each_point_carries_its_request_names_buckets_and_totals(self, app):
        durations = app.histogram()
        for seconds in (0.004, 0.02, 0.02, 0.3, 12.0):
            durations.record(seconds, GET_ITEMS)
        durations.record(0.1, {**GET_ITEMS, "http.response.status_code": 500})
        message = app.export()
        sent = message.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points
        export = decode(message)
        assert (export.ignored, export.rejected, export.reasons) == (0, 0, ())
        first, second = export.points
        assert first == HistogramPoint(
            stream_key=first.stream_key,
            service="shop",
            route="/items/{id}",
            method="GET",
            status_code=200,
            temporality=Temporality.CUMULATIVE,
            start_time_unix_nano=sent[0].start_time_unix_nano,
            time_unix_nano=sent[0].time_unix_nano,
            count=5,
            sum_ms=first.sum_ms,
            min_ms=4.0,
            max_ms=12000.0,
            buckets=ExplicitBuckets(
                tuple(bound * 1000.0 for bound in BOUNDARIES_S),
                (1, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1),
            ),
        )
        assert first.sum_ms == pytest.approx(12344.0)
        assert (second.status_code, second.count) == (500, 1)
        assert first.stream_key != second.stream_key

    def test_the_old_metric_is_read_in_milliseconds(self, app):
        app.histogram(OLD_DURATION, unit="ms").record(
            20.0, {"http.method": "POST", "http.route": "/orders", "http.status_code": 201}
        )
        (point,) = decode(app.export()).points
        assert (point.method, point.route, point.status_code) == ("POST", "/orders", 201)
        assert point.buckets.bounds_ms == BOUNDARIES_S
        assert point.sum_ms == 20.0

    def test_the_metric_unit_wins_over_the_name(self, app):
        app.histogram(OLD_DURATION, unit="s").record(0.02, GET_ITEMS)
        (point,) = decode(app.export()).points
        assert point.sum_ms == 20.0

    def test_without_a_status_code_error_type_means_500(self, app):
        durations = app.histogram()
        durations.record(0.1, {"http.request.method": "GET", "error.type": "TimeoutError"})
        durations.record(0.1, {"http.request.method": "GET"})
        assert sorted(point.status_code for point in decode(app.export()).points) == [200, 500]

    def test_a_cumulative_stream_keeps_its_key_and_start_across_exports(self, app):
        durations = app.histogram()
        durations.record(0.02, GET_ITEMS)
        (before,) = decode(app.export()).points
        durations.record(0.02, GET_ITEMS)
        (after,) = decode(app.export()).points
        assert after.stream_key == before.stream_key
        assert after.start_time_unix_nano == before.start_time_unix_nano
        assert (before.count, after.count) == (1, 2)

    def test_delta_points_cover_consecutive_intervals(self):
        app = App(temporality=AggregationTemporality.DELTA)
        durations = app.histogram()
        durations.record(0.02, GET_ITEMS)
        (before,) = decode(app.export()).points
        durations.record(0.02, GET_ITEMS)
        (after,) = decode(app.export()).points
        assert (before.temporality, before.count, after.count) == (Temporality.DELTA, 1, 1)
        assert after.start_time_unix_nano == before.time_unix_nano

    def test_replicas_of_one_service_are_distinct_streams(self):
        keys = set()
        for instance in ("shop-1", "shop-2"):
            app = App(resource={"service.name": "shop", "service.instance.id": instance})
            app.histogram().record(0.02, GET_ITEMS)
            (point,) = decode(app.export()).points
            keys.add((point.service, point.stream_key))
        assert len(keys) == 2
        assert {service for service, _ in keys} == {"shop"}

    def test_the_stream_key_ignores_attribute_order(self, app):
        app.histogram().record(0.02, GET_ITEMS)
        message = app.export()
        (point,) = decode(message).points
        attributes = first_point(message).attributes
        reordered = list(reversed(attributes))
        del attributes[:]
        attributes.extend(reordered)
        (again,) = decode(message).points
        assert again.stream_key == point.stream_key

    def test_other_metrics_are_accepted_ignored_and_counted(self, app):
        app.histogram().record(0.02, GET_ITEMS)
        app.meter.create_counter("http.server.active_requests").add(3)
        app.meter.create_counter("orders").add(1, {"kind": "a"})
        app.meter.create_counter("orders").add(1, {"kind": "b"})
        app.meter.create_histogram("http.server.response.body.size", unit="By").record(10)
        export = decode(app.export())
        assert (len(export.points), export.ignored, export.rejected) == (1, 4, 0)


class TestDuplicatesFromOneService:
    def test_the_stable_metric_supersedes_the_old_one_sent_beside_it(self, app):
        app.histogram().record(0.02, GET_ITEMS)
        app.histogram(OLD_DURATION, unit="ms").record(20.0, {"http.method": "GET"})
        export = decode(app.export())
        assert [point.sum_ms for point in export.points] == [20.0]
        assert export.ignored == 1

    def test_an_exponential_histogram_supersedes_an_explicit_one_of_the_same_name(self):
        app = App(
            views=[
                View(
                    instrument_name=DURATION,
                    meter_name="explicit",
                    aggregation=ExplicitBucketHistogramAggregation(BOUNDARIES_S),
                ),
                View(
                    instrument_name=DURATION,
                    meter_name="exponential",
                    aggregation=ExponentialBucketHistogramAggregation(),
                ),
            ]
        )
        for meter in ("explicit", "exponential"):
            app.histogram(meter=meter).record(0.02, GET_ITEMS)
        export = decode(app.export())
        assert [type(point.buckets) for point in export.points] == [ExponentialBuckets]
        assert export.ignored == 1


class TestExponentialHistograms:
    def test_exponential_points_carry_scale_offset_and_counts(self):
        app = App(aggregation=ExponentialBucketHistogramAggregation(max_size=160))
        for seconds in (0.01, 0.2, 0.5, 3.0):
            app.histogram().record(seconds, GET_ITEMS)
        message = app.export()
        sent = first_point(message)
        (point,) = decode(message).points
        assert point.buckets == ExponentialBuckets(
            scale=sent.scale,
            zero_count=sent.zero_count,
            offset=sent.positive.offset,
            counts=tuple(sent.positive.bucket_counts),
            unit_ms=1000.0,
        )
        assert (point.count, point.min_ms, point.max_ms) == (4, 10.0, 3000.0)

    def test_quantiles_are_within_the_bucket_relative_width(self):
        app = App(aggregation=ExponentialBucketHistogramAggregation(max_size=160))
        values_ms = lognormal(5000, 80.0, seed=3)
        durations = app.histogram()
        for value in values_ms:
            durations.record(float(value) / 1000.0, GET_ITEMS)
        (point,) = decode(app.export()).points
        sketch = point.sketch()
        assert sketch.count == 5000
        base = 2.0 ** (2.0**-point.buckets.scale)
        width = (base - 1) / (base + 1)
        bound = RELATIVE_ACCURACY * (1 + width) + width + SLACK
        for q in QUANTILES:
            exact = float(np.quantile(values_ms, q, method="lower"))
            assert abs(estimate(sketch, q) - exact) <= bound * exact, (q, exact)
        assert (sketch.min, sketch.max) == pytest.approx((values_ms.min(), values_ms.max()))


class TestJsonEncoding:
    def test_json_decodes_exactly_like_protobuf(self, app):
        app.histogram().record(0.02, GET_ITEMS)
        app.meter.create_counter("orders").add(1)
        message = app.export()
        exemplar = first_point(message).exemplars.add()
        exemplar.trace_id = bytes(range(16))
        exemplar.span_id = bytes(range(8))
        exemplar.as_double = 0.02
        exemplar.time_unix_nano = first_point(message).time_unix_nano
        assert decode_metrics(otlp_json(message), JSON) == decode(message)

    @pytest.mark.parametrize("body", [b'{"foo": 1}', b"[]", b"{", b'{"resourceMetrics": {}}'])
    def test_json_that_is_not_an_otlp_metric_export_is_refused(self, body):
        with pytest.raises(DecodeError):
            decode_metrics(body, JSON)

    def test_garbage_protobuf_is_refused(self):
        with pytest.raises(DecodeError):
            decode_metrics(b"\xff" * 32, PROTOBUF)


class TestRefusedPoints:
    @pytest.fixture
    def message(self, app: App) -> ExportMetricsServiceRequest:
        app.histogram().record(0.02, GET_ITEMS)
        app.histogram().record(0.02, {**GET_ITEMS, "http.route": "/other"})
        return app.export()

    def refused(self, message: ExportMetricsServiceRequest) -> tuple[int, int, tuple[str, ...]]:
        export = decode(message)
        return len(export.points), export.rejected, export.reasons

    @pytest.mark.parametrize(
        ("alter", "reason"),
        [
            (
                lambda p: setattr(p, "count", p.count + 1),
                "count is not the sum of the bucket counts",
            ),
            (
                lambda p: p.bucket_counts.append(0),
                "bucket_counts not one longer than explicit_bounds",
            ),
            (
                lambda p: p.ClearField("bucket_counts"),
                "bucket_counts not one longer than explicit_bounds",
            ),
            (
                lambda p: p.explicit_bounds.__setitem__(3, 0.001),
                "explicit bounds not finite and increasing",
            ),
            (
                lambda p: p.explicit_bounds.__setitem__(3, math.nan),
                "explicit bounds not finite and increasing",
            ),
            (lambda p: setattr(p, "sum", -1.0), "negative or non-finite sum, min or max"),
            (lambda p: setattr(p, "sum", math.inf), "negative or non-finite sum, min or max"),
            (lambda p: setattr(p, "min", 5.0), "negative or non-finite sum, min or max"),
            (lambda p: setattr(p, "time_unix_nano", 0), "no timestamp, or a start after it"),
            (
                lambda p: setattr(p, "start_time_unix_nano", p.time_unix_nano + 1),
                "no timestamp, or a start after it",
            ),
            (lambda p: p.bucket_counts.extend([0] * 5000), "more than 4096 buckets"),
        ],
    )
    def test_a_bad_explicit_point_is_refused_with_its_reason(self, message, alter, reason):
        alter(first_point(message))
        assert self.refused(message) == (1, 1, (f"1 data point: {reason}",))

    @pytest.mark.parametrize("status", [0, 999, "oops"])
    def test_a_point_with_a_bad_status_is_refused(self, app, status):
        app.histogram().record(0.02, {**GET_ITEMS, "http.response.status_code": status})
        assert self.refused(app.export()) == (
            0,
            1,
            ("1 data point: HTTP status code not an integer in 100..599",),
        )

    def test_unspecified_temporality_refuses_every_point_of_the_metric(self, message):
        metric = message.resource_metrics[0].scope_metrics[0].metrics[0]
        metric.histogram.aggregation_temporality = Wire.AGGREGATION_TEMPORALITY_UNSPECIFIED
        assert self.refused(message) == (
            0,
            2,
            ("2 data points: aggregation temporality unspecified",),
        )

    def test_a_unit_that_is_not_a_duration_unit_is_refused(self, message):
        message.resource_metrics[0].scope_metrics[0].metrics[0].unit = "us"
        assert self.refused(message) == (0, 2, ("2 data points: histogram unit neither s nor ms",))

    def test_a_point_without_a_recorded_value_is_ignored(self, message):
        first_point(message).flags = 1
        export = decode(message)
        assert (len(export.points), export.ignored, export.rejected) == (1, 1, 0)

    def test_a_bad_service_name_refuses_every_point_of_its_resource(self):
        app = App(resource={"service.name": "x" * 10_000})
        app.histogram().record(0.02, GET_ITEMS)
        app.meter.create_counter("orders").add(1)
        assert self.refused(app.export()) == (
            0,
            2,
            ("2 data points: service.name longer than 128 characters or with control characters",),
        )

    @pytest.fixture
    def exponential(self) -> ExportMetricsServiceRequest:
        app = App(aggregation=ExponentialBucketHistogramAggregation())
        app.histogram().record(0.02, GET_ITEMS)
        app.histogram().record(0.5, GET_ITEMS)
        return app.export()

    @pytest.mark.parametrize(
        ("alter", "reason"),
        [
            (lambda p: setattr(p, "scale", 21), "exponential scale outside -10..20"),
            (lambda p: setattr(p, "scale", -11), "exponential scale outside -10..20"),
            (lambda p: p.negative.bucket_counts.append(1), "values in the negative buckets"),
            (lambda p: setattr(p, "zero_count", 1), "count is not the sum of the bucket counts"),
            (lambda p: p.positive.bucket_counts.extend([0] * 5000), "more than 4096 buckets"),
        ],
    )
    def test_a_bad_exponential_point_is_refused_with_its_reason(self, exponential, alter, reason):
        alter(first_point(exponential))
        assert self.refused(exponential) == (0, 1, (f"1 data point: {reason}",))


def explicit_bound(bounds: Sequence[float], exact: float, low: float, high: float) -> float:
    """Half the width of the bucket holding ``exact`` (narrowed to ``[low, high]``), plus
    the sketch's relative accuracy, as ``sketches`` documents."""
    position = int(np.searchsorted(bounds, exact, side="left"))
    lower = max(bounds[position - 1] if position else 0.0, low)
    upper = min(bounds[position] if position < len(bounds) else high, high)
    return (upper - lower) / 2 + RELATIVE_ACCURACY * upper + SLACK * upper


class TestExplicitToSketch:
    BOUNDS_MS = tuple(bound * 1000.0 for bound in BOUNDARIES_S)

    def bucketed(self, values: np.ndarray) -> tuple[int, ...]:
        positions = np.searchsorted(self.BOUNDS_MS, values, side="left")
        return tuple(np.bincount(positions, minlength=len(self.BOUNDS_MS) + 1).tolist())

    @pytest.mark.parametrize("seed", range(5))
    def test_the_count_is_exact_and_quantiles_within_half_a_bucket(self, seed):
        values = lognormal(20_000, 120.0, seed)
        low, high = float(values.min()), float(values.max())
        sketch = explicit_to_sketch(self.BOUNDS_MS, self.bucketed(values), min_ms=low, max_ms=high)
        assert (sketch.count, sketch.min, sketch.max) == (20_000, low, high)
        for q in QUANTILES:
            exact = float(np.quantile(values, q, method="lower"))
            error = abs(estimate(sketch, q) - exact)
            assert error <= explicit_bound(self.BOUNDS_MS, exact, low, high), (q, exact)

    def test_the_overflow_bucket_reads_as_the_last_bound_without_a_maximum(self):
        counts = (0,) * len(self.BOUNDS_MS) + (10,)
        sketch = explicit_to_sketch(self.BOUNDS_MS, counts)
        assert sketch.count == 10
        assert sketch.quantile(0.5) == pytest.approx(10_000.0, rel=RELATIVE_ACCURACY)

    def test_the_overflow_bucket_reaches_the_maximum_when_known(self):
        counts = (0,) * len(self.BOUNDS_MS) + (3,)
        sketch = explicit_to_sketch(self.BOUNDS_MS, counts, min_ms=11_000.0, max_ms=30_000.0)
        assert sketch.quantiles((0.0, 0.5, 1.0)) == [
            11_000.0,
            pytest.approx(20_500.0, rel=RELATIVE_ACCURACY),  # (11 s + 30 s) / 2
            30_000.0,
        ]

    def test_one_value_keeps_its_exact_extremes(self):
        counts = (0, 0, 1) + (0,) * (len(self.BOUNDS_MS) - 2)
        sketch = explicit_to_sketch(self.BOUNDS_MS, counts, min_ms=17.0, max_ms=17.0)
        assert (sketch.count, sketch.min, sketch.max) == (1, 17.0, 17.0)

    def test_no_values_make_an_empty_sketch(self):
        sketch = explicit_to_sketch(self.BOUNDS_MS, (0,) * (len(self.BOUNDS_MS) + 1))
        assert sketch.count == 0


class TestExponentialToSketch:
    def test_zero_bucket_and_positive_buckets_are_counted_exactly(self):
        # Scale 0: base 2, bucket k of offset 3 holds (2**(3+k), 2**(4+k)] units.
        sketch = exponential_to_sketch(0, 2, 3, (1, 0, 4), unit_ms=1.0)
        assert sketch.count == 7
        assert sketch.zero_count == 2
        # The representative 2 * upper / (1 + base) of (8, 16] and of (32, 64].
        assert sketch.quantile(0.35) == pytest.approx(32 / 3, rel=RELATIVE_ACCURACY)
        assert sketch.quantile(0.9) == pytest.approx(128 / 3, rel=RELATIVE_ACCURACY)

    def test_the_unit_scales_the_buckets(self):
        in_seconds = exponential_to_sketch(4, 0, -50, (5,), unit_ms=1000.0)
        in_ms = exponential_to_sketch(4, 0, -50, (5,), unit_ms=1.0)
        ratio = estimate(in_seconds, 0.5) / estimate(in_ms, 0.5)
        assert ratio == pytest.approx(1000.0, rel=2 * RELATIVE_ACCURACY)

    def test_an_absurd_offset_saturates_instead_of_overflowing(self):
        sketch = exponential_to_sketch(-10, 0, 2**40, (1,))
        assert sketch.max == pytest.approx(MAX_INDEXABLE_MS)
        assert exponential_to_sketch(20, 0, -(2**40), (1,)).zero_count == 1


class TestSketchCountsAValueManyTimes:
    def test_adding_a_value_n_times_at_once_equals_adding_it_n_times(self):
        at_once, one_by_one = QuantileSketch(), QuantileSketch()
        for value, count in ((0.0, 3), (12.5, 70_000), (900.0, 1)):
            at_once.add(value, count)
            for _ in range(count):
                one_by_one.add(value)
        assert dict(at_once.bins) == dict(one_by_one.bins)
        assert (at_once.count, at_once.zero_count) == (one_by_one.count, one_by_one.zero_count)
        assert at_once.sum == pytest.approx(one_by_one.sum)
        assert QuantileSketch.from_bytes(at_once.to_bytes()).count == 70_004

    def test_a_count_below_one_is_refused(self):
        with pytest.raises(ValueError, match="count"):
            QuantileSketch().add(1.0, 0)
