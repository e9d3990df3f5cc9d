"""Moves recorded minutes from memory to the store, and keeps the stored history in shape.

The server runs :meth:`MetricsFlusher.run` in the background: every few seconds it drains
everything recorded since the last round, the current minute's share included (a crash
loses at most one interval), and inserts it in one transaction. Rows of one minute and key
add up: analysis windows merge every minute row, and a rollup folds every minute row of a
complete hour, partial ones included, so each request is counted once. When the store refuses, the
buckets go back into the recorder (whose bound caps memory) and the next round retries;
a bucket is written by exactly one successful transaction, so nothing is lost or counted
twice. Every few minutes the same task rolls complete hours and days up and prunes expired
rows.
Any other error is a bug: it ends :meth:`~MetricsFlusher.run` (the buckets still go back)
for the supervisor to log and restart. On shutdown :meth:`~MetricsFlusher.shutdown`
flushes everything still held, the current minute included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

from app.core.config import Settings
from app.db.base import utcnow
from app.db.store import Store, is_outage
from app.services.performance import storage
from app.services.performance.exposition import RequestTotals

logger = logging.getLogger("watchkeeper.performance")

# Rollup and pruning run this often; their work only grows by an hour per hour.
MAINTAIN_EVERY: Final = timedelta(minutes=5)
# Each flush writes at most this many buckets, so a backlog after an outage goes in pieces.
FLUSH_CHUNK: Final = 5000

StoredObserver = Callable[[Sequence[MinuteBucket]], None]


def process_name() -> str:
    """Names this process in the rows it writes: host and pid."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}"


class MetricsFlusher:
    """Drains a :class:`RequestRecorder` into the store and rolls the history up."""

    def __init__(
        self,
        store: Store,
        recorder: RequestRecorder,
        *,
        flush_seconds: float,
        rollup_after: timedelta,
        retention: timedelta,
        exemplars: int,
        process: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.flush_seconds = flush_seconds
        self.rollup_after = rollup_after
        self.retention = retention
        self.exemplars = exemplars
        self.process = process or process_name()
        self.clock = clock
        self.observers: list[StoredObserver] = []
        self.failed_flushes = 0
        # Whether the last flush reached the store; receivers of other services' figures
        # ask their senders to retry later when it did not and the recorder is full.
        self.store_available = True
        # One flush at a time: a flush that found nothing left to drain must still not
        # return while another one is writing what it drained.
        self._flushing = asyncio.Lock()

    async def flush(self) -> int:
        """Stores everything recorded so far, the current minute's share included (after any
        flush already under way has stored its share); returns buckets stored.

        Raises what the store raised, after handing the buckets back to the recorder.
        """
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        buckets = self.recorder.drain_partial()
        stored = 0
        for start in range(0, len(buckets), FLUSH_CHUNK):
            chunk = buckets[start : start + FLUSH_CHUNK]
            try:
                async with self.store.unit_of_work() as session:
                    await storage.write_minutes(session, chunk, process=self.process)
            except BaseException as error:
                # Unwritten buckets go back whole; the written chunks are committed already.
                self.recorder.restore(buckets[start:])
                if isinstance(error, Exception) and is_outage(error):
                    self.store_available = False
                raise
            self.store_available = True
            stored += len(chunk)
            for observer in self.observers:
                observer(chunk)
        return stored

    async def maintain(self) -> int:
        """Rolls complete hours up, then complete days, and deletes expired rows, batch by
        batch; rows touched."""
        now = self.clock()
        touched = 0
        for grain in (storage.MINUTES_INTO_HOURS, storage.HOURS_INTO_DAYS):
            while True:
                try:
                    async with self.store.unit_of_work() as session:
                        rolled = await storage.roll_up(
                            session, before=now, exemplars=self.exemplars, grain=grain
                        )
                except storage.RollupRace as race:
                    logger.info("rollup skipped: %s", race)
                    return touched
                touched += rolled
                if not rolled:
                    break
        while True:
            async with self.store.unit_of_work() as session:
                removed = await storage.delete_expired(
                    session,
                    minutes_before=now - self.rollup_after,
                    hours_before=now - self.retention,
                )
            touched += removed
            if not removed:
                return touched

    async def run(self, stop: asyncio.Event) -> None:
        """Flushes every ``flush_seconds`` until ``stop`` is set; raises what is no outage."""
        last_maintained: datetime | None = None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.flush_seconds)
            if stop.is_set():
                break
            try:
                await self.flush()
                now = self.clock()
                if last_maintained is None or now - last_maintained >= MAINTAIN_EVERY:
                    await self.maintain()
                    last_maintained = now
            except Exception as error:
                if not is_outage(error):
                    raise
                # The store is away: the buckets are back in the recorder for the next round.
                self.failed_flushes += 1
                logger.warning(
                    "request metrics not stored (%d buckets held): %s",
                    self.recorder.pending_buckets,
                    type(error).__name__,
                )

    async def shutdown(self) -> None:
        """Final flush of every bucket held, current minute included; logs what is lost."""
        try:
            await self.flush()
        except Exception as error:
            lost = sum(b.count for b in self.recorder.drain(final=True))
            logger.error(
                "request metrics of %d requests lost at shutdown: %s",
                lost,
                type(error).__name__,
                exc_info=not is_outage(error),  # a bug comes with its traceback
            )


@dataclass(frozen=True)
class RequestTracking:
    """The request metrics of one process: the recorder the middleware feeds, the flusher
    that stores it, and the cumulative totals ``GET /metrics`` shows."""

    recorder: RequestRecorder
    flusher: MetricsFlusher
    totals: RequestTotals

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> RequestTracking:
        """Everything wired as the settings say."""
        recorder = RequestRecorder(
            service=settings.self_service_name,
            exemplars=settings.performance_exemplars,
            max_buckets=settings.performance_max_buckets,
        )
        flusher = MetricsFlusher(
            store,
            recorder,
            flush_seconds=settings.performance_flush_seconds,
            rollup_after=timedelta(days=settings.performance_rollup_after_days),
            retention=timedelta(days=settings.performance_retention_days),
            exemplars=settings.performance_exemplars,
        )
        totals = RequestTotals()
        flusher.observers.append(totals.add)
        return cls(recorder, flusher, totals)
