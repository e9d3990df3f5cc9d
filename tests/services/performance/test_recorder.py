"""The per-minute recorder: bucketing, services and sources, pre-built sketches, exemplars,
drain/restore and its memory bound."""

import threading
from datetime import UTC, datetime

import pytest
from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

from app.vocabulary.performance import RequestSource, StatusClass, status_class
from app.vocabulary.sketch import QuantileSketch

MINUTE_2 = 120.0  # epoch seconds at the start of the third minute since the epoch


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def totals(buckets: list[MinuteBucket]) -> dict[tuple[datetime, str, str, str], int]:
    found: dict[tuple[datetime, str, str, str], int] = {}
    for bucket in buckets:
        key = (bucket.minute, bucket.route, bucket.method, bucket.status_class)
        found[key] = found.get(key, 0) + bucket.count
    return found


class TestBucketing:
    def test_requests_fall_in_the_minute_they_ended(self):
        recorder = RequestRecorder(wall_clock=FrozenClock(1e9))
        for at in (MINUTE_2, MINUTE_2 + 59.999, MINUTE_2 + 60):
            recorder.record("/items/{item_id}", "GET", 200, 10.0, at=at)
        buckets = recorder.drain(final=True)
        assert [(b.minute, b.count) for b in buckets] == [
            (datetime(1970, 1, 1, 0, 2, tzinfo=UTC), 2),
            (datetime(1970, 1, 1, 0, 3, tzinfo=UTC), 1),
        ]

    def test_route_method_and_status_class_each_make_a_bucket(self):
        recorder = RequestRecorder()
        for method, status in (("GET", 200), ("GET", 204), ("GET", 404), ("POST", 201)):
            recorder.record("/items", method, status, 1.0, at=MINUTE_2)
        recorder.record("/other", "GET", 200, 1.0, at=MINUTE_2)
        keys = [(b.route, b.method, b.status_class, b.count) for b in recorder.drain(final=True)]
        assert keys == [
            ("/items", "GET", StatusClass.SUCCESS, 2),
            ("/items", "GET", StatusClass.CLIENT_ERROR, 1),
            ("/items", "POST", StatusClass.SUCCESS, 1),
            ("/other", "GET", StatusClass.SUCCESS, 1),
        ]

    def test_made_up_methods_share_one_series(self):
        recorder = RequestRecorder()
        for method in ("BREW", "PROPFIND", "X" * 50):
            recorder.record("<unmatched>", method, 405, 1.0, at=MINUTE_2)
        [bucket] = recorder.drain(final=True)
        assert (bucket.method, bucket.count) == ("OTHER", 3)

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            (101, "1xx"),
            (200, "2xx"),
            (308, "3xx"),
            (499, "4xx"),
            (500, "5xx"),
            (599, "5xx"),
            (0, "5xx"),  # out of range: a broken response
            (99, "5xx"),
            (600, "5xx"),
        ],
    )
    def test_status_classes(self, code, expected):
        assert status_class(code) == expected

    def test_a_bucket_holds_count_sum_max_and_a_sketch(self):
        recorder = RequestRecorder()
        for duration in (5.0, 15.0, 40.0):
            recorder.record("/r", "GET", 200, duration, at=MINUTE_2)
        [bucket] = recorder.drain(final=True)
        assert (bucket.count, bucket.sum_ms, bucket.max_ms) == (3, 60.0, 40.0)
        assert bucket.sketch.quantile(0.5) == pytest.approx(15.0, rel=0.01)


class TestServicesAndSources:
    def test_the_recorders_own_service_and_source_name_its_requests(self):
        recorder = RequestRecorder(service="billing", source=RequestSource.AGENT)
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2)
        [bucket] = recorder.drain(final=True)
        assert (bucket.service, bucket.source) == ("billing", RequestSource.AGENT)

    def test_each_service_and_source_makes_its_own_buckets(self):
        recorder = RequestRecorder()
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2)
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2, service="watchkeeper")
        recorder.record(
            "/r", "GET", 200, 1.0, at=MINUTE_2, service="shop", source=RequestSource.OTLP_TRACES
        )
        recorder.record(
            "/r", "GET", 200, 1.0, at=MINUTE_2, service="shop", source=RequestSource.OTLP_METRICS
        )
        found = [(b.service, b.source, b.count) for b in recorder.drain(final=True)]
        assert found == [
            ("shop", RequestSource.OTLP_METRICS, 1),
            ("shop", RequestSource.OTLP_TRACES, 1),
            ("watchkeeper", RequestSource.SELF, 2),
        ]

    def test_a_prebuilt_sketch_adds_its_exact_count_to_the_minute_holding_its_time(self):
        recorder = RequestRecorder()
        recorder.record(
            "/orders",
            "POST",
            201,
            30.0,
            "trace-1",
            at=MINUTE_2,
            service="shop",
            source=RequestSource.OTLP_METRICS,
        )
        histogram = QuantileSketch.of([10.0] * 900 + [80.0] * 100)
        for _ in range(2):
            recorder.record_sketch(
                service="shop",
                source=RequestSource.OTLP_METRICS,
                route="/orders",
                method="POST",
                status_class=StatusClass.SUCCESS,
                at=MINUTE_2 + 59.5,
                sketch=histogram,
            )
        [bucket] = recorder.drain(final=True)
        assert (bucket.minute.minute, bucket.count, bucket.sum_ms) == (2, 2001, 34030.0)
        assert [e.request_id for e in bucket.exemplars] == ["trace-1"]
        assert histogram.count == 1000  # the caller's sketch is merged, never taken over

    def test_an_empty_sketch_opens_no_bucket(self):
        recorder = RequestRecorder()
        recorder.record_sketch(
            service="shop",
            source=RequestSource.OTLP_METRICS,
            route="/orders",
            method="GET",
            status_class=StatusClass.SUCCESS,
            at=MINUTE_2,
            sketch=QuantileSketch(),
        )
        assert recorder.pending_buckets == 0

    def test_full_once_the_bound_is_reached(self):
        recorder = RequestRecorder(max_buckets=2)
        recorder.record("/a", "GET", 200, 1.0, at=MINUTE_2)
        assert not recorder.is_full
        recorder.record("/b", "GET", 200, 1.0, at=MINUTE_2, service="shop")
        assert recorder.is_full
        recorder.drain(final=True)
        assert not recorder.is_full


class TestExemplars:
    def test_the_slowest_requests_are_kept_slowest_first(self):
        recorder = RequestRecorder(exemplars=3)
        durations = [12.0, 250.0, 3.0, 250.0, 90.0, 7.0, 1200.0]
        for number, duration in enumerate(durations):
            recorder.record("/r", "GET", 200, duration, f"req-{number}", at=MINUTE_2 + number)
        [bucket] = recorder.drain(final=True)
        assert [(e.duration_ms, e.request_id) for e in bucket.exemplars] == [
            (1200.0, "req-6"),
            (250.0, "req-3"),
            (250.0, "req-1"),
        ]
        assert bucket.exemplars[0].at == datetime.fromtimestamp(MINUTE_2 + 6, UTC)

    def test_requests_without_an_id_can_tie(self):
        recorder = RequestRecorder(exemplars=2)
        for _ in range(4):
            recorder.record("/r", "GET", 200, 5.0, None, at=MINUTE_2)
        [bucket] = recorder.drain(final=True)
        assert [e.request_id for e in bucket.exemplars] == [None, None]


class TestDrainAndRestore:
    def test_drain_takes_only_complete_minutes(self):
        clock = FrozenClock(MINUTE_2 + 61)
        recorder = RequestRecorder(wall_clock=clock)
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2)
        recorder.record("/r", "GET", 200, 1.0)  # the current, unfinished minute
        assert [b.minute.minute for b in recorder.drain()] == [2]
        assert recorder.drain() == []
        assert recorder.pending_buckets == 1
        assert [b.minute.minute for b in recorder.drain(final=True)] == [3]
        assert recorder.pending_buckets == 0

    def test_restored_buckets_drain_again_merged_with_late_requests(self):
        recorder = RequestRecorder(exemplars=2)
        recorder.record("/r", "GET", 200, 10.0, "a", at=MINUTE_2)
        recorder.record("/r", "GET", 200, 30.0, "b", at=MINUTE_2)
        failed = recorder.drain(final=True)
        recorder.record("/r", "GET", 200, 20.0, "late", at=MINUTE_2 + 1)
        recorder.restore(failed)
        [bucket] = recorder.drain(final=True)
        assert (bucket.count, bucket.sum_ms) == (3, 60.0)
        assert [e.request_id for e in bucket.exemplars] == ["b", "late"]

    def test_a_flaky_store_loses_nothing_and_counts_nothing_twice(self):
        clock = FrozenClock(0.0)
        recorder = RequestRecorder(wall_clock=clock)
        stored: list[MinuteBucket] = []
        expected: dict[tuple[datetime, str, str, str], int] = {}
        for step in range(40):
            clock.now = step * 20.0
            route = f"/r{step % 3}"
            recorder.record(route, "GET", 200 + 100 * (step % 4), float(step + 1))
            key = (
                datetime.fromtimestamp(step * 20 // 60 * 60, UTC),
                route,
                "GET",
                status_class(200 + 100 * (step % 4)),
            )
            expected[key] = expected.get(key, 0) + 1
            drained = recorder.drain()
            if step % 3:  # the write fails two times out of three
                recorder.restore(drained)
            else:
                stored.extend(drained)
        stored.extend(recorder.drain(final=True))
        assert totals(stored) == expected
        assert sum(b.sum_ms for b in stored) == sum(range(1, 41))

    def test_memory_is_bounded_by_dropping_the_oldest_minutes(self):
        recorder = RequestRecorder(max_buckets=4)
        for minute in range(6):
            for route in ("/a", "/b"):
                recorder.record(route, "GET", 200, 1.0, at=minute * 60.0)
                recorder.record(route, "GET", 200, 1.0, at=minute * 60.0)
        failed = recorder.drain(final=True)
        assert recorder.dropped_buckets == 8 and recorder.dropped_requests == 16
        assert [b.minute.minute for b in failed] == [4, 4, 5, 5]
        recorder.restore(failed)
        recorder.record("/a", "GET", 200, 1.0, at=6 * 60.0)
        assert recorder.pending_buckets == 3
        assert [b.minute.minute for b in recorder.drain(final=True)] == [5, 5, 6]
        assert recorder.dropped_requests == 20

    def test_a_late_request_for_a_dropped_minute_is_counted_as_dropped(self):
        recorder = RequestRecorder(max_buckets=1)
        recorder.record("/a", "GET", 200, 1.0, at=600.0)
        recorder.record("/a", "GET", 200, 1.0, at=0.0)
        assert (recorder.dropped_buckets, recorder.dropped_requests) == (1, 1)
        assert [b.minute.minute for b in recorder.drain(final=True)] == [10]


class TestConcurrency:
    def test_threads_recording_while_another_drains_lose_nothing(self):
        clock = FrozenClock(0.0)
        recorder = RequestRecorder(wall_clock=clock)
        drained: list[MinuteBucket] = []
        done = threading.Event()

        def produce(worker: int) -> None:
            for number in range(3000):
                recorder.record(f"/w{worker % 2}", "GET", 200, 1.0, at=float(number % 600))

        def consume() -> None:
            clock.now = 1e9  # every minute counts as complete
            while not done.is_set():
                drained.extend(recorder.drain())

        consumer = threading.Thread(target=consume)
        consumer.start()
        producers = [threading.Thread(target=produce, args=(w,)) for w in range(8)]
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join()
        done.set()
        consumer.join()
        drained.extend(recorder.drain(final=True))
        assert sum(b.count for b in drained) == 8 * 3000
        assert sum(b.sum_ms for b in drained) == 8 * 3000.0
