"""The flusher on real stores: several processes, flushes in turn, a store outage, the
background loop, a bug left to the supervisor, and the window figures the alert rules read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

from app.db.models import RequestMinute
from app.db.store import Store
from app.services.performance.figures import Endpoint, window_figures
from app.services.performance.flusher import MetricsFlusher
from tests.faults.deadlines import eventually

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# A store nobody listens on: every connection attempt is refused.
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/absent"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = Store(store_url)
    yield store
    await store.dispose()


def flusher_for(store: Store, recorder: RequestRecorder, process: str) -> MetricsFlusher:
    return MetricsFlusher(
        store,
        recorder,
        flush_seconds=0.02,
        rollup_after=timedelta(days=2),
        retention=timedelta(days=400),
        exemplars=5,
        process=process,
    )


def later_clock() -> float:
    return (START + timedelta(hours=2)).timestamp()


async def figures(store: Store) -> tuple[int, dict[Endpoint, int], set[str]]:
    async with store.unit_of_work() as session:
        found = await window_figures(session, START, START + timedelta(hours=1))
        processes = set(await session.scalars(select(RequestMinute.process).distinct()))
    return (
        found.overall.requests,
        {endpoint: f.requests for endpoint, f in found.endpoints.items()},
        processes,
    )


class TestSeveralProcesses:
    async def test_two_recorders_on_one_store_lose_and_double_nothing(self, store: Store) -> None:
        recorders = [RequestRecorder(wall_clock=later_clock) for _ in range(2)]
        flushers = [flusher_for(store, r, f"web-{n}") for n, r in enumerate(recorders)]
        expected = 0
        for round_ in range(3):
            for n, recorder in enumerate(recorders):
                for i in range(50 + n):
                    at = (START + timedelta(minutes=round_ * 7 + i % 3)).timestamp()
                    recorder.record("/items/{item_id}", "GET", 200 if i % 10 else 503, 5 + i, at=at)
                    expected += 1
            # Both flush the same minutes' keys, interleaved, round after round.
            await asyncio.gather(*(f.flush() for f in flushers))

        total, per_endpoint, processes = await figures(store)

        assert total == expected
        assert per_endpoint == {("watchkeeper", "GET", "/items/{item_id}"): expected}
        assert processes == {"web-0", "web-1"}


# A statement that keeps every other connection's writes of request minutes waiting, until
# its transaction ends.
WRITES_HELD = {
    "sqlite": "BEGIN IMMEDIATE",
    "postgresql": "LOCK TABLE request_minutes IN SHARE MODE",
}


class TestFlushesInTurn:
    async def test_a_flush_returns_only_once_the_one_under_way_has_stored_its_share(
        self, store: Store, store_url: str, backend: str
    ) -> None:
        recorder = RequestRecorder(wall_clock=later_clock)
        flusher = flusher_for(store, recorder, "web-0")
        for second in range(20):
            recorder.record("/items/{item_id}", "GET", 200, 5.0, at=START.timestamp() + second)
        holder = Store(store_url)
        try:
            async with holder.engine.connect() as connection:
                await connection.exec_driver_sql(WRITES_HELD[backend])
                under_way = asyncio.create_task(flusher.flush())
                await eventually(lambda: recorder.pending_buckets == 0, "the first flush draining")
                # Nothing is left to drain, yet what the first flush drained is not stored.
                asked = asyncio.create_task(flusher.flush())
                returned_early, _ = await asyncio.wait({asked}, timeout=0.5)
                await connection.rollback()
            await asyncio.wait_for(asyncio.gather(under_way, asked), timeout=30)
        finally:
            await holder.dispose()

        assert returned_early == set()
        assert (await figures(store))[0] == 20


class TestStoreOutage:
    async def test_buckets_wait_in_memory_and_are_stored_once_when_it_returns(
        self, store: Store
    ) -> None:
        recorder = RequestRecorder(wall_clock=later_clock)
        for i in range(40):
            recorder.record(
                "/orders", "POST", 201, 10 + i, at=(START + timedelta(minutes=i % 4)).timestamp()
            )
        away = Store(UNREACHABLE)
        flusher = flusher_for(away, recorder, "web")

        with pytest.raises(OSError):
            await flusher.flush()
        held, available_while_away = recorder.pending_buckets, flusher.store_available
        flusher.store = store
        stored = await flusher.flush()
        again = await flusher.flush()
        await away.dispose()

        assert held == 4
        # What a receiver asks about before it takes more figures than memory can hold.
        assert available_while_away is False
        assert flusher.store_available is True
        assert (stored, again) == (4, 0)
        assert (await figures(store))[0] == 40

    async def test_the_loop_keeps_going_through_an_outage(self, store: Store) -> None:
        recorder = RequestRecorder(wall_clock=later_clock)
        recorder.record("/orders", "POST", 201, 12.0, at=START.timestamp())
        away = Store(UNREACHABLE)
        flusher = flusher_for(away, recorder, "web")
        stop = asyncio.Event()
        running = asyncio.create_task(flusher.run(stop))
        # Polled: the flusher has no event for a failed round, and none is needed in production.
        await eventually(lambda: flusher.failed_flushes >= 2, "two failed flushes")
        flusher.store = store
        recorder.record("/orders", "POST", 201, 14.0, at=START.timestamp())

        async def both_stored() -> bool:  # the next round stores both
            return (await figures(store))[0] >= 2

        await eventually(both_stored, "the flusher storing the held requests")
        stop.set()
        await running
        await away.dispose()

        assert (await figures(store))[0] == 2


class TestBug:
    async def test_a_bug_ends_the_loop_for_the_supervisor_to_log_and_restart(
        self, store: Store
    ) -> None:
        recorder = RequestRecorder(wall_clock=later_clock)
        recorder.record("/orders", "POST", 201, 12.0, at=START.timestamp())
        flusher = flusher_for(store, recorder, "web")

        def broken(_: Sequence[MinuteBucket]) -> None:
            raise RuntimeError("observer bug")

        flusher.observers.append(broken)

        with pytest.raises(RuntimeError, match="observer bug"):
            await asyncio.wait_for(flusher.run(asyncio.Event()), timeout=10)
        assert flusher.failed_flushes == 0  # not taken for an outage


class TestCurrentMinute:
    async def test_each_flush_stores_the_current_minutes_share_so_far(self, store: Store) -> None:
        recorder = RequestRecorder()  # the real clock: this minute is not complete
        recorder.record("/now", "GET", 200, 3.0)
        flusher = flusher_for(store, recorder, "web")

        first = await flusher.flush()
        recorder.record("/now", "GET", 200, 5.0)
        await flusher.shutdown()

        assert first == 1  # a crash now would lose nothing recorded before this flush
        async with store.unit_of_work() as session:
            rows = await session.scalar(select(func.count()).select_from(RequestMinute))
            assert await session.scalar(select(func.sum(RequestMinute.count))) == 2
        assert rows == 2  # two shares of one minute, adding up

    async def test_shares_of_a_minute_roll_up_into_its_hour_once(self, store: Store) -> None:
        recorder = RequestRecorder(wall_clock=lambda: (START + timedelta(seconds=10)).timestamp())
        flusher = flusher_for(store, recorder, "web")
        for share in range(3):  # three flushes while the minute is still running
            recorder.record("/orders", "POST", 201, 10.0 + share, at=START.timestamp())
            await flusher.flush()
        before = (await figures(store))[0]

        flusher.clock = lambda: START + timedelta(hours=2)  # the hour is complete
        rolled = await flusher.maintain()

        assert rolled == 3  # every share, partial ones included
        assert before == (await figures(store))[0] == 3
