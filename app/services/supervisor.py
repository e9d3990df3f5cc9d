"""Keeps a process's background tasks running, and stops them all in order.

A task is a coroutine function of the supervisor's stop event: it runs until the event is
set and returns. One that raises instead has crashed: the crash is counted per task (for
``/metrics``) and logged, a store outage as one warning line naming its cause, anything
else as a bug with its traceback, and the task is started again after a backoff that
doubles with each crash in a row up to a cap. A run that lasted ``healthy_after`` seconds
counts as a recovery, so the next crash waits the first delay again.

Shutdown sets the stop event, waits for every task to finish what it is doing, then runs
the shutdown steps in the order they were added; a step that fails is logged and the next
one runs all the same, so a broken monitor never leaves requests unflushed or the store
open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from app.db.store import is_outage

logger = logging.getLogger("watchkeeper.supervisor")

Task = Callable[[asyncio.Event], Awaitable[None]]
Step = Callable[[], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

# 2**64 times any first delay is past every cap; the exponent stops there so it never overflows.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True)
class Backoff:
    """How long to wait before restarting a task that crashed."""

    first: float = 1.0
    cap: float = 60.0
    healthy_after: float = 60.0

    def delay(self, crashes: int) -> float:
        """The wait after the ``crashes``-th crash in a row: first, doubled each time, capped."""
        return min(self.first * 2.0 ** min(crashes - 1, _MAX_DOUBLINGS), self.cap)


def cause(error: BaseException) -> str:
    """What went wrong, in one line: the driver's error rather than SQLAlchemy's wrapper."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(original).strip().splitlines()
    return f"{type(original).__name__}: {lines[0]}" if lines else type(original).__name__


class Supervisor:
    """Runs named background tasks, restarts the ones that crash, and shuts them down."""

    def __init__(
        self,
        *,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.stop = asyncio.Event()
        self.failures: dict[str, int] = {}
        self._sleep = sleep
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._steps: list[tuple[str, Step]] = []

    def start(self, name: str, task: Task) -> None:
        """Runs ``task(stop)`` in the background until shutdown, restarting it on a crash."""
        self.failures.setdefault(name, 0)
        self._tasks.append(asyncio.create_task(self._keep(name, task), name=name))

    def on_shutdown(self, name: str, step: Step) -> None:
        """Adds a step that shutdown runs, in order, once every task has finished."""
        self._steps.append((name, step))

    async def shutdown(self) -> None:
        """Stops the tasks, waits for them, then runs every shutdown step."""
        self.stop.set()
        await asyncio.gather(*self._tasks)  # each finishes the work in flight
        for name, step in self._steps:
            try:
                await step()
            except Exception as error:  # the next steps must run all the same
                _report(f"shutdown step {name!r} failed", error, then="going on")

    async def _keep(self, name: str, task: Task) -> None:
        crashes = 0
        while not self.stop.is_set():
            started = self._clock()
            try:
                await task(self.stop)
            except Exception as error:
                self.failures[name] += 1
                if self._clock() - started >= self.backoff.healthy_after:
                    crashes = 0
                crashes += 1
                if self.stop.is_set():
                    _report(f"task {name!r} crashed while stopping", error, then="not restarted")
                    return
                delay = self.backoff.delay(crashes)
                _report(f"task {name!r} crashed", error, then=f"restarting in {delay:g} s")
                await self._pause(delay)
            else:
                return

    async def _pause(self, seconds: float) -> None:
        """Sleeps ``seconds``, or less if shutdown begins meanwhile."""
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, stopping):
                waiter.cancel()
            await asyncio.gather(sleeping, stopping, return_exceptions=True)


def _report(what: str, error: Exception, *, then: str) -> None:
    if is_outage(error):
        logger.warning("%s, the store is unavailable (%s); %s", what, cause(error), then)
    else:
        logger.exception("%s; %s", what, then, exc_info=error)
