"""Starting a sweep's checks only as fast as the event loop keeps up.

A check times its round trip on our event loop: an answer that has arrived is seen only
when the loop comes round to the check. Start 500 checks at once and each waits behind the
others' work (on two cores, 500 targets answering instantly read ~500 ms each), so the
figure would be our queueing, not the dependency's latency. ``LoopPacer`` therefore starts
checks one at a time, the next once a turn of the loop takes at most ``budget_s``: the loop
has time to spare, and a check sees its answer within a turn or two of its arrival.

Two rules keep a sweep moving whatever else the process does: when none of the sweep's
checks is running there is nothing of ours to wait for, and no check waits more than
``max_wait_s`` for a quiet turn (a loop kept busy by other work then gets one start per
``max_wait_s``). The context's cap still bounds how many checks are in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# A turn of a loop with time to spare takes a fraction of a millisecond, and a slow turn
# adds its length to every check waiting in it. Tuned with bench/health_sweep.py: 1 ms
# keeps 500 instant targets near 10 ms and starts 2,000 slow ones faster than at once.
LAG_BUDGET_S = 0.001
MAX_WAIT_S = 0.005


async def loop_turn() -> float:
    """Seconds one turn of the running loop takes: a yield, and the wait to run again."""
    started = time.perf_counter()
    await asyncio.sleep(0)
    return time.perf_counter() - started


class LoopPacer:
    """Starts coroutines as tasks one by one, each once the loop keeps up (see module)."""

    def __init__(
        self,
        *,
        budget_s: float = LAG_BUDGET_S,
        max_wait_s: float = MAX_WAIT_S,
        turn: Callable[[], Awaitable[float]] = loop_turn,
    ) -> None:
        self.budget_s = budget_s
        self.max_wait_s = max_wait_s
        self._turn = turn

    async def run_all(self, coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
        """Each coroutine's result, in order; cancelling the call cancels every task."""
        tasks: list[asyncio.Task[T]] = []
        running: set[asyncio.Task[T]] = set()
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                if tasks:
                    await self._admit(lambda: bool(running))
                task = group.create_task(coroutine)
                running.add(task)
                task.add_done_callback(running.discard)
                tasks.append(task)
        return [task.result() for task in tasks]

    async def _admit(self, running: Callable[[], bool]) -> None:
        """Returns once a turn of the loop is quick, none of ours runs, or the wait is up."""
        waited = 0.0
        while running() and waited < self.max_wait_s:
            lag = await self._turn()
            if lag <= self.budget_s:
                return
            waited += lag
