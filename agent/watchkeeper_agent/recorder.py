"""In-memory aggregation of served requests into per-minute buckets, ready to be stored.

A bucket is one minute of one service's requests for one route, method and status class,
as one source reported them. The request path calls :meth:`RequestRecorder.record`, which
queues the request (an append, taking no lock) and never awaits; the queue is counted into
its buckets, under the lock, every :data:`FOLD_EVERY` requests and before anything is read
or taken, so a reader never misses a request. It counts a request of the recorder's
own service and source unless told otherwise. Receivers of other services' figures call
:meth:`RequestRecorder.record` with their service and source, or
:meth:`RequestRecorder.record_sketch` with a sketch already built from a histogram.

Two ways out, and a bucket is always either in the recorder or with its taker, never both,
so nothing is lost or counted twice:

* :meth:`RequestRecorder.drain` takes every complete minute (a store writer's pace);
* :meth:`RequestRecorder.drain_partial` takes everything recorded since the last drain,
  the unfinished minute's share included. The agent's shipper calls it every few seconds:
  what it takes is a delta, and deltas of one key add up wherever they are stored.

A taker that could not deliver hands the buckets back with :meth:`RequestRecorder.restore`.
Buckets for one key may therefore be taken more than once (a delta, a restore, a late
request): their sketches add up.

Memory is bounded by ``max_buckets``: past it the oldest minutes are dropped and counted in
:attr:`RequestRecorder.dropped_requests`, so a long outage costs history, not the process;
:attr:`RequestRecorder.is_full` tells a receiver when to ask its senders to wait rather
than lose their figures.

A process forked from one holding a recorder (gunicorn's preloaded workers) starts with the
recorder empty: the parent's buckets are the parent's to deliver, and a lock held by one of
the parent's threads at the fork would never be released in the child.
"""

from __future__ import annotations

import heapq
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from watchkeeper_agent.sketch import MAX_INDEXABLE_MS, QuantileSketch
from watchkeeper_agent.vocabulary import RequestSource, StatusClass, status_class

DEFAULT_EXEMPLARS: Final = 5
DEFAULT_MAX_BUCKETS: Final = 10_000
# Requests queued before they are counted into their buckets, all at once.
FOLD_EVERY: Final = 256
OTHER_METHOD: Final = "OTHER"
# Anything else is folded into OTHER_METHOD so made-up verbs cannot multiply the series.
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One slow request kept as evidence: how long, which request, when it ended."""

    duration_ms: float
    request_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class MinuteBucket:
    """Every request of one minute of one service for one route, method and status class,
    as one source reported them."""

    minute: datetime  # start of the minute, UTC
    service: str
    source: RequestSource
    route: str
    method: str
    status_class: StatusClass
    sketch: QuantileSketch
    exemplars: tuple[Exemplar, ...]  # slowest first

    @property
    def count(self) -> int:
        """Requests in the bucket."""
        return self.sketch.count

    @property
    def sum_ms(self) -> float:
        """Total time spent serving them."""
        return self.sketch.sum

    @property
    def max_ms(self) -> float:
        """The slowest of them."""
        slowest = self.sketch.max
        assert slowest is not None, "drained buckets are never empty"
        return slowest


# (minute index since the epoch, service, source, route, method, status class): cheap to
# build and hash.
_Key = tuple[int, str, RequestSource, str, str, StatusClass]
# (duration, tie-breaker, request id, epoch seconds): a min-heap keeps the N slowest.
_HeapEntry = tuple[float, int, str | None, float]
# A request recorded but not counted yet, as ``record`` was given it (``at`` resolved).
_Waiting = tuple[float, str | None, RequestSource | None, str, str, int, float, str | None]


class _Accumulator:
    """The mutable state of one live bucket."""

    __slots__ = ("admits_above", "exemplars", "sketch")

    def __init__(self, exemplars: int) -> None:
        self.sketch = QuantileSketch()
        self.exemplars: list[_HeapEntry] = []
        # A request slower than this is among the slowest kept: read by every request, so it
        # sits beside the sketch rather than inside the heap's own objects.
        self.admits_above = -math.inf if exemplars else math.inf


class RequestRecorder:
    """Thread-safe per-minute aggregation of request durations."""

    def __init__(
        self,
        *,
        service: str = "watchkeeper",
        source: RequestSource = RequestSource.SELF,
        exemplars: int = DEFAULT_EXEMPLARS,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if exemplars < 0 or max_buckets < 1:
            raise ValueError("exemplars must be >= 0 and max_buckets >= 1")
        self._service = service
        self._source = source
        self._exemplars = exemplars
        self._max_buckets = max_buckets
        self._wall_clock = wall_clock
        self._start_empty()
        _LIVE_RECORDERS.add(self)

    def _start_empty(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[_Key, _Accumulator] = {}
        self._waiting: deque[_Waiting] = deque()
        self._sequence = 0
        self._dropped_buckets = 0
        self._dropped_requests = 0

    @property
    def exemplars_per_bucket(self) -> int:
        """How many of the slowest requests each bucket keeps."""
        return self._exemplars

    @property
    def service(self) -> str:
        """The service a request is counted for unless ``record`` names another."""
        return self._service

    @property
    def pending_buckets(self) -> int:
        """Buckets held in memory, complete or not."""
        self._count_waiting()
        return len(self._live)

    @property
    def is_full(self) -> bool:
        """Whether the buckets held reached ``max_buckets``: a new one would drop a minute."""
        self._count_waiting()
        return len(self._live) >= self._max_buckets

    @property
    def dropped_buckets(self) -> int:
        """Buckets discarded to stay within ``max_buckets`` since start."""
        self._count_waiting()
        return self._dropped_buckets

    @property
    def dropped_requests(self) -> int:
        """Requests inside the discarded buckets."""
        self._count_waiting()
        return self._dropped_requests

    def record(
        self,
        route: str,
        method: str,
        status_code: int,
        duration_ms: float,
        request_id: str | None = None,
        at: float | None = None,
        *,
        service: str | None = None,
        source: RequestSource | None = None,
    ) -> None:
        """Count one served request; ``at`` is when it ended (epoch seconds, default now).

        ``service`` and ``source`` default to the recorder's own. A duration that is not a
        non-negative number of milliseconds is refused with ``ValueError``.
        """
        if not 0.0 <= duration_ms <= MAX_INDEXABLE_MS:  # NaN fails every comparison
            raise ValueError(f"duration {duration_ms!r} is not a number of milliseconds")
        if at is None:
            at = self._wall_clock()
        # A deque's append is atomic on its own: the request path takes no lock.
        waiting = self._waiting
        waiting.append((at, service, source, route, method, status_code, duration_ms, request_id))
        if len(waiting) >= FOLD_EVERY:
            self._count_waiting()

    def _count_waiting(self) -> None:
        """Count the requests queued so far into their buckets, taking the lock."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        """Count the requests waiting in their buckets; the lock is held.

        The request path only queues a request: a fold of many runs with its code and data
        in the CPU's caches, where one bucket update squeezed between two requests' work
        found them cold (in an app of 200 routes, about 3.6 µs a request against about 1).
        """
        waiting, live = self._waiting, self._live
        # As many as are queued now: those queued meanwhile wait for the next fold.
        for _ in range(len(waiting)):
            at, service, source, route, method, status_code, duration_ms, request_id = (
                waiting.popleft()
            )
            key = (
                int(at // 60),
                self._service if service is None else service,
                self._source if source is None else source,
                route,
                method if method in KNOWN_METHODS else OTHER_METHOD,
                status_class(status_code),
            )
            bucket = live.get(key)
            opened = bucket is None
            if bucket is None:
                bucket = live[key] = _Accumulator(self._exemplars)
            bucket.sketch.add(duration_ms)
            # Most requests are not among their bucket's slowest: decided here, without a call.
            if duration_ms > bucket.admits_above:
                self._offer_exemplar(bucket, duration_ms, request_id, at)
            if opened:
                # After counting, so a request landing in a dropped minute is counted as lost.
                self._enforce_bound()

    def record_sketch(
        self,
        *,
        service: str,
        source: RequestSource,
        route: str,
        method: str,
        status_class: StatusClass,
        at: float,
        sketch: QuantileSketch,
        exemplars: Iterable[tuple[float, str | None, float]] = (),
    ) -> None:
        """Count requests already summed up in ``sketch`` (its count is exact) in the minute
        holding ``at`` (epoch seconds).

        ``exemplars`` are candidates among those requests, as (duration in milliseconds,
        request id, epoch seconds); the slowest are kept as :meth:`record` keeps them. A
        histogram names no request, so it offers none; a batch of spans offers its slowest
        :attr:`exemplars_per_bucket` of each bucket.
        """
        if not sketch.count:
            return
        key = (
            int(at // 60),
            service,
            source,
            route,
            method if method in KNOWN_METHODS else OTHER_METHOD,
            status_class,
        )
        with self._lock:
            self._fold()  # the requests recorded before count first
            bucket = self._live.get(key)
            opened = bucket is None
            if bucket is None:
                bucket = self._live[key] = _Accumulator(self._exemplars)
            bucket.sketch.merge(sketch)
            for duration_ms, request_id, ended_at in exemplars:
                self._offer_exemplar(bucket, duration_ms, request_id, ended_at)
            if opened:
                self._enforce_bound()

    def drain(self, *, final: bool = False) -> list[MinuteBucket]:
        """Take every complete minute (every minute when ``final``), oldest first."""
        with self._lock:
            self._fold()
            if final:
                taken, self._live = self._live, {}
            else:
                current = int(self._wall_clock() // 60)
                complete = [key for key in self._live if key[0] < current]
                taken = {key: self._live.pop(key) for key in complete}
        # The taken accumulators are no longer shared, so converting them needs no lock.
        return [
            _freeze(key, bucket) for key, bucket in sorted(taken.items()) if bucket.sketch.count
        ]

    def drain_partial(self) -> list[MinuteBucket]:
        """Take everything recorded since the last drain, the unfinished minute's share
        included: a delta that adds up with the next ones for the same minute."""
        return self.drain(final=True)

    def restore(self, buckets: Iterable[MinuteBucket]) -> None:
        """Take back drained buckets that could not be delivered; they will drain again."""
        with self._lock:
            self._fold()
            for drained in buckets:
                key = (
                    int(drained.minute.timestamp()) // 60,
                    drained.service,
                    drained.source,
                    drained.route,
                    drained.method,
                    drained.status_class,
                )
                bucket = self._live.setdefault(key, _Accumulator(self._exemplars))
                bucket.sketch.merge(drained.sketch)
                for exemplar in drained.exemplars:
                    self._offer_exemplar(
                        bucket,
                        exemplar.duration_ms,
                        exemplar.request_id,
                        exemplar.at.timestamp(),
                    )
            self._enforce_bound()

    def _enforce_bound(self) -> None:
        """Drop the oldest minutes, whole, until at most ``max_buckets`` remain."""
        while len(self._live) > self._max_buckets:
            # A whole minute at a time, so a long outage pays this scan once per minute.
            oldest = min(key[0] for key in self._live)
            for key in [key for key in self._live if key[0] == oldest]:
                dropped = self._live.pop(key)
                self._dropped_buckets += 1
                self._dropped_requests += dropped.sketch.count

    def _offer_exemplar(
        self, bucket: _Accumulator, duration_ms: float, request_id: str | None, at: float
    ) -> None:
        """Keep the request if it is among the slowest of its bucket."""
        heap = bucket.exemplars
        # The sequence number breaks ties so request ids (maybe None) are never compared.
        if len(heap) < self._exemplars:
            self._sequence += 1
            heapq.heappush(heap, (duration_ms, self._sequence, request_id, at))
        elif heap and duration_ms > heap[0][0]:
            self._sequence += 1
            heapq.heapreplace(heap, (duration_ms, self._sequence, request_id, at))
        else:
            return
        if len(heap) == self._exemplars:
            bucket.admits_above = heap[0][0]


def _freeze(key: _Key, bucket: _Accumulator) -> MinuteBucket:
    minute, service, source, route, method, klass = key
    exemplars = tuple(
        Exemplar(duration, request_id, datetime.fromtimestamp(at, UTC))
        for duration, _, request_id, at in sorted(bucket.exemplars, reverse=True)
    )
    return MinuteBucket(
        minute=datetime.fromtimestamp(minute * 60, UTC),
        service=service,
        source=source,
        route=route,
        method=method,
        status_class=klass,
        sketch=bucket.sketch,
        exemplars=exemplars,
    )


_LIVE_RECORDERS: Final[weakref.WeakSet[RequestRecorder]] = weakref.WeakSet()


def _empty_after_fork() -> None:
    for recorder in list(_LIVE_RECORDERS):
        recorder._start_empty()


if hasattr(os, "register_at_fork"):  # not on Windows, which never forks
    os.register_at_fork(after_in_child=_empty_after_fork)
