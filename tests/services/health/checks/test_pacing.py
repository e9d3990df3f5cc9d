"""A sweep starts its checks no faster than the event loop keeps up, so each check's
latency is its dependency's and not the time it waited for our loop. The loop's turns are
played by the test: each fake turn yields to the loop for real and reports the lag given."""

from __future__ import annotations

import asyncio

import pytest

from app.services.health.checks.pacing import LoopPacer


class Turns:
    """Loop turns that last what the test says (the last one repeats), counted."""

    def __init__(self, *lags: float) -> None:
        self.lags = list(lags)
        self.taken = 0

    async def __call__(self) -> float:
        await asyncio.sleep(0)
        self.taken += 1
        return self.lags[min(self.taken, len(self.lags)) - 1]


async def checks_started(pacer: LoopPacer, count: int, turns: Turns) -> list[int]:
    """Runs ``count`` checks that stay in flight until all have started; returns the number
    of turns taken before each one started."""
    all_started = asyncio.Event()
    started: list[int] = []

    async def check() -> int:
        started.append(turns.taken)
        if len(started) == count:
            all_started.set()
        await all_started.wait()
        return len(started)

    await asyncio.wait_for(pacer.run_all(check() for _ in range(count)), timeout=10)
    return started


class TestPacing:
    async def test_the_next_check_waits_for_a_quick_turn_of_the_loop(self) -> None:
        # Two slow turns (4 ms, 2 ms) before a quick one (0.5 ms), for each check after the first.
        turns = Turns(0.004, 0.002, 0.0005, 0.004, 0.002, 0.0005)
        pacer = LoopPacer(budget_s=0.001, max_wait_s=1.0, turn=turns)

        assert await checks_started(pacer, 3, turns) == [0, 3, 6]

    async def test_a_loop_kept_busy_by_other_work_still_starts_a_check_per_max_wait(
        self,
    ) -> None:
        turns = Turns(0.004)  # every turn is slow, whatever the sweep does
        pacer = LoopPacer(budget_s=0.001, max_wait_s=0.010, turn=turns)

        assert await checks_started(pacer, 3, turns) == [0, 3, 6]  # 3 x 4 ms >= 10 ms

    async def test_with_none_of_its_checks_running_the_next_starts_at_once(self) -> None:
        turns = Turns(60.0)  # a loop this slow is not the sweep's doing
        pacer = LoopPacer(budget_s=0.001, max_wait_s=3600.0, turn=turns)

        async def instant(number: int) -> int:
            return number

        results = await asyncio.wait_for(pacer.run_all(instant(n) for n in range(5)), timeout=10)

        assert results == [0, 1, 2, 3, 4]
        # A turn or two each (the check runs, then its end is noted), never the sixty that
        # waiting out max_wait would take.
        assert turns.taken <= 2 * 4

    async def test_results_come_back_in_order_and_cancelling_cancels_every_check(
        self,
    ) -> None:
        pacer = LoopPacer(turn=Turns(0.0))
        hung, all_started = asyncio.Event(), asyncio.Event()
        started: list[int] = []
        cancelled: list[int] = []

        async def hangs(number: int) -> int:
            started.append(number)
            if len(started) == 3:
                all_started.set()
            try:
                await hung.wait()
            except asyncio.CancelledError:
                cancelled.append(number)
                raise
            return number

        sweep = asyncio.create_task(pacer.run_all(hangs(n) for n in range(3)))
        await asyncio.wait_for(all_started.wait(), timeout=10)
        sweep.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweep

        assert sorted(cancelled) == [0, 1, 2]
