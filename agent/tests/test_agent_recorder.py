"""The agent's recorder: buckets, the memory bound, drains of whole minutes and of deltas."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

import pytest
from watchkeeper_agent.recorder import FOLD_EVERY, MinuteBucket, RequestRecorder
from watchkeeper_agent.vocabulary import RequestSource, StatusClass

MINUTE_2 = 120.0  # epoch seconds at the start of the third minute since the epoch


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Totals = dict[tuple[datetime, str, str, str], tuple[int, float]]


def totals(buckets: list[MinuteBucket]) -> Totals:
    """Count and sum per minute, route, method and status class, deltas added up."""
    found: Totals = {}
    for bucket in buckets:
        key = (bucket.minute, bucket.route, bucket.method, bucket.status_class)
        count, total = found.get(key, (0, 0.0))
        found[key] = (count + bucket.count, total + bucket.sum_ms)
    return found


class TestBuckets:
    def test_route_method_status_class_and_minute_each_make_a_bucket(self) -> None:
        recorder = RequestRecorder(service="shop", source=RequestSource.AGENT)
        recorder.record("/items", "GET", 200, 1.0, at=MINUTE_2)
        recorder.record("/items", "GET", 204, 3.0, at=MINUTE_2 + 59)
        recorder.record("/items", "GET", 404, 1.0, at=MINUTE_2)
        recorder.record("/items", "BREW", 200, 1.0, at=MINUTE_2)
        recorder.record("/items", "GET", 200, 1.0, at=MINUTE_2 + 60)
        buckets = recorder.drain(final=True)
        assert [(b.minute.minute, b.method, b.status_class, b.count) for b in buckets] == [
            (2, "GET", StatusClass.SUCCESS, 2),
            (2, "GET", StatusClass.CLIENT_ERROR, 1),
            (2, "OTHER", StatusClass.SUCCESS, 1),
            (3, "GET", StatusClass.SUCCESS, 1),
        ]
        assert {(b.service, b.source) for b in buckets} == {("shop", RequestSource.AGENT)}
        assert (buckets[0].sum_ms, buckets[0].max_ms) == (4.0, 3.0)

    def test_another_service_and_source_can_be_named_per_request(self) -> None:
        recorder = RequestRecorder()
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2)
        recorder.record(
            "/r", "GET", 200, 1.0, at=MINUTE_2, service="shop", source=RequestSource.AGENT
        )
        buckets = recorder.drain(final=True)
        assert {(b.service, b.source) for b in buckets} == {
            ("watchkeeper", RequestSource.SELF),
            ("shop", RequestSource.AGENT),
        }

    def test_a_duration_that_is_no_duration_is_refused_and_leaves_no_bucket(self) -> None:
        recorder = RequestRecorder()
        with pytest.raises(ValueError):
            recorder.record("/r", "GET", 200, -1.0, at=MINUTE_2)
        assert recorder.pending_buckets == 0

    def test_a_refused_duration_among_many_requests_costs_none_of_the_others(self) -> None:
        # Requests are counted in batches: a refusal must not spoil the batch it fell in.
        recorder = RequestRecorder(exemplars=1)
        for number in range(2 * FOLD_EVERY + 7):
            recorder.record("/r", "GET", 200, float(number), f"req-{number}", at=MINUTE_2)
            if number % 100 == 50:
                with pytest.raises(ValueError):
                    recorder.record("/r", "GET", 200, float("nan"), at=MINUTE_2)
        [bucket] = recorder.drain(final=True)
        assert bucket.count == 2 * FOLD_EVERY + 7
        assert bucket.max_ms == 2 * FOLD_EVERY + 6.0
        assert [e.request_id for e in bucket.exemplars] == [f"req-{2 * FOLD_EVERY + 6}"]

    def test_every_reading_counts_the_requests_recorded_just_before(self) -> None:
        recorder = RequestRecorder(max_buckets=2)
        recorder.record("/a", "GET", 200, 1.0, at=0.0)
        assert recorder.pending_buckets == 1
        recorder.record("/b", "GET", 200, 1.0, at=60.0)
        recorder.record("/c", "GET", 200, 1.0, at=120.0)
        assert recorder.is_full
        assert (recorder.dropped_buckets, recorder.dropped_requests) == (1, 1)
        assert [b.route for b in recorder.drain(final=True)] == ["/b", "/c"]

    def test_the_slowest_requests_are_kept_as_exemplars(self) -> None:
        recorder = RequestRecorder(exemplars=2)
        for number, duration in enumerate([12.0, 250.0, 3.0, 1200.0]):
            recorder.record("/r", "GET", 200, duration, f"req-{number}", at=MINUTE_2 + number)
        [bucket] = recorder.drain(final=True)
        assert [(e.duration_ms, e.request_id) for e in bucket.exemplars] == [
            (1200.0, "req-3"),
            (250.0, "req-1"),
        ]
        assert bucket.exemplars[0].at == datetime.fromtimestamp(MINUTE_2 + 3, UTC)


class TestDrains:
    def test_drain_takes_only_complete_minutes(self) -> None:
        recorder = RequestRecorder(wall_clock=FrozenClock(MINUTE_2 + 61))
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2)
        recorder.record("/r", "GET", 200, 1.0)  # the current, unfinished minute
        assert [b.minute.minute for b in recorder.drain()] == [2]
        assert recorder.drain() == []
        assert recorder.pending_buckets == 1

    def test_partial_drains_are_deltas_that_add_up_to_the_minute(self) -> None:
        clock = FrozenClock(MINUTE_2)
        recorder = RequestRecorder(wall_clock=clock)
        shipped: list[MinuteBucket] = []
        for second in range(0, 120, 3):
            clock.now = MINUTE_2 + second
            recorder.record("/r", "GET", 200, float(second + 1))
            if second % 15 == 0:  # a shipment every 15 seconds, mid-minute included
                shipped.extend(recorder.drain_partial())
        shipped.extend(recorder.drain_partial())
        assert totals(shipped) == {
            (datetime(1970, 1, 1, 0, 2, tzinfo=UTC), "/r", "GET", "2xx"): (
                20,
                float(sum(range(1, 60, 3))),
            ),
            (datetime(1970, 1, 1, 0, 3, tzinfo=UTC), "/r", "GET", "2xx"): (
                20,
                float(sum(range(61, 120, 3))),
            ),
        }
        assert recorder.drain_partial() == []

    def test_restored_deltas_drain_again_merged_with_late_requests(self) -> None:
        recorder = RequestRecorder(exemplars=2)
        recorder.record("/r", "GET", 200, 10.0, "a", at=MINUTE_2)
        recorder.record("/r", "GET", 200, 30.0, "b", at=MINUTE_2)
        failed = recorder.drain_partial()
        recorder.record("/r", "GET", 200, 20.0, "late", at=MINUTE_2 + 1)
        recorder.restore(failed)
        [bucket] = recorder.drain_partial()
        assert (bucket.count, bucket.sum_ms) == (3, 60.0)
        assert [e.request_id for e in bucket.exemplars] == ["b", "late"]

    def test_threads_recording_while_another_ships_deltas_lose_nothing(self) -> None:
        recorder = RequestRecorder()
        shipped: list[MinuteBucket] = []
        done = threading.Event()

        def produce(worker: int) -> None:
            for number in range(3000):
                recorder.record(f"/w{worker % 2}", "GET", 200, 1.0, at=float(number % 600))

        def ship() -> None:
            while not done.is_set():
                shipped.extend(recorder.drain_partial())

        shipper = threading.Thread(target=ship)
        shipper.start()
        producers = [threading.Thread(target=produce, args=(w,)) for w in range(8)]
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join()
        done.set()
        shipper.join()
        shipped.extend(recorder.drain_partial())
        assert sum(b.count for b in shipped) == 8 * 3000
        assert sum(b.sum_ms for b in shipped) == 8 * 3000.0


class TestBound:
    def test_memory_is_bounded_by_dropping_the_oldest_minutes(self) -> None:
        recorder = RequestRecorder(max_buckets=4)
        for minute in range(6):
            for route in ("/a", "/b"):
                recorder.record(route, "GET", 200, 1.0, at=minute * 60.0)
                recorder.record(route, "GET", 200, 1.0, at=minute * 60.0)
        assert recorder.is_full
        kept = recorder.drain(final=True)
        assert (recorder.dropped_buckets, recorder.dropped_requests) == (8, 16)
        assert [b.minute.minute for b in kept] == [4, 4, 5, 5]

    def test_a_late_request_for_a_dropped_minute_is_counted_as_dropped(self) -> None:
        recorder = RequestRecorder(max_buckets=1)
        recorder.record("/a", "GET", 200, 1.0, at=600.0)
        recorder.record("/a", "GET", 200, 1.0, at=0.0)
        assert (recorder.dropped_buckets, recorder.dropped_requests) == (1, 1)
        assert [b.minute.minute for b in recorder.drain(final=True)] == [10]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
class TestFork:
    def test_a_forked_worker_starts_empty_and_the_parent_keeps_its_buckets(self) -> None:
        recorder = RequestRecorder()
        recorder.record("/r", "GET", 200, 1.0, at=MINUTE_2)
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the worker: it must not ship the parent's request again
            recorder.record("/r", "GET", 200, 2.0, at=MINUTE_2)
            counts = [b.count for b in recorder.drain(final=True)]
            os.write(write, repr(counts).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            assert pipe.read() == "[1]"
        os.waitpid(child, 0)
        assert [b.count for b in recorder.drain(final=True)] == [1]
