"""A trace export counted a bucket at a time leaves the recorder exactly as counting each
span on its own would: the same buckets, sketches and slowest requests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

from app.services.performance.otlp import ServedRequest
from app.services.performance.otlp.span_buckets import bucketed
from app.vocabulary.performance import RequestSource, status_class

T0 = 1_700_000_000.0

served = st.builds(
    ServedRequest,
    service=st.sampled_from(["shop", "billing"]),
    route=st.sampled_from(["/a", "/b/{id}", None]),
    method=st.sampled_from(["GET", "POST"]),
    status_code=st.sampled_from([200, 201, 404, 500, 503]),
    duration_ms=st.one_of(
        st.floats(min_value=0.0, max_value=86_400_000.0), st.sampled_from([0.0, 1e-9, 5.0])
    ),
    ended_at=st.floats(min_value=T0, max_value=T0 + 300.0),
    trace_id=st.one_of(st.none(), st.text("0123456789abcdef", min_size=32, max_size=32)),
)


def one_at_a_time(requests: list[ServedRequest]) -> list[MinuteBucket]:
    recorder = RequestRecorder(exemplars=3)
    for r in requests:
        recorder.record(
            r.route or "<unmatched>",
            r.method,
            r.status_code,
            r.duration_ms,
            r.trace_id,
            r.ended_at,
            service=r.service,
            source=RequestSource.OTLP_TRACES,
        )
    return recorder.drain(final=True)


def by_bucket(requests: list[ServedRequest]) -> list[MinuteBucket]:
    recorder = RequestRecorder(exemplars=3)
    for bucket in bucketed(requests, recorder.exemplars_per_bucket):
        recorder.record_sketch(
            service=bucket.service,
            source=RequestSource.OTLP_TRACES,
            route=bucket.route or "<unmatched>",
            method=bucket.method,
            status_class=status_class(bucket.status_code),
            at=bucket.minute * 60.0,
            sketch=bucket.sketch,
            exemplars=bucket.slowest,
        )
    return recorder.drain(final=True)


def seen(buckets: list[MinuteBucket]) -> list[tuple[object, ...]]:
    return [
        (
            b.minute,
            b.service,
            b.route,
            b.method,
            b.status_class,
            b.sketch.count,
            dict(b.sketch.bins),
            b.sketch.zero_count,
            b.sketch.min,
            b.sketch.max,
            round(b.sketch.sum, 3),
            sorted(e.duration_ms for e in b.exemplars),
        )
        for b in buckets
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(served, max_size=80))
def test_counting_by_bucket_is_counting_each_span(requests: list[ServedRequest]) -> None:
    assert seen(by_bucket(requests)) == seen(one_at_a_time(requests))


def test_each_bucket_keeps_its_slowest_requests_with_their_trace_ids() -> None:
    requests = [
        ServedRequest("shop", "/a", "GET", 200, float(ms), T0 + ms / 1000, f"{ms:032x}")
        for ms in (5, 50, 7, 900, 30, 2)
    ]

    (bucket,) = by_bucket(requests)

    assert [(e.duration_ms, e.request_id) for e in bucket.exemplars] == [
        (900.0, f"{900:032x}"),
        (50.0, f"{50:032x}"),
        (30.0, f"{30:032x}"),
    ]


def test_an_empty_export_has_no_buckets() -> None:
    assert bucketed([], 3) == []
