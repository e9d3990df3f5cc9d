"""The supervisor of background tasks: a crashed task is logged, counted and restarted after
a growing, capped backoff; shutdown stops every task and runs every step, even past one that
fails. Sleeps and the clock are injected, so nothing here waits for real time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import DBAPIError

from app.services.supervisor import Backoff, Supervisor

DEADLINE = 5.0  # seconds; only a broken supervisor comes near it


@pytest.fixture
def log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.LogCaptureFixture]:
    """The supervisor's log lines (the app's logging setup may keep them from the root)."""
    monkeypatch.setattr(logging.getLogger("watchkeeper"), "propagate", True)
    caplog.set_level(logging.INFO, logger="watchkeeper.supervisor")
    yield caplog


class Recorded:
    """An injected sleep that returns at once and remembers how long it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class CrashingTask:
    """Raises ``errors`` one per run, then runs until stopped; says when that run began."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.runs = 0
        self.steady = asyncio.Event()

    async def __call__(self, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        self.steady.set()
        await stop.wait()


async def run_until_steady(supervisor: Supervisor, name: str, task: CrashingTask) -> None:
    supervisor.start(name, task)
    await asyncio.wait_for(task.steady.wait(), DEADLINE)
    await asyncio.wait_for(supervisor.shutdown(), DEADLINE)


class TestRestart:
    async def test_each_crash_in_a_row_doubles_the_wait_up_to_the_cap(self) -> None:
        sleep = Recorded()
        supervisor = Supervisor(backoff=Backoff(first=1.0, cap=8.0), sleep=sleep)
        task = CrashingTask(*(RuntimeError(f"bug {n}") for n in range(6)))

        await run_until_steady(supervisor, "flaky", task)

        assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        assert task.runs == 7
        assert supervisor.failures == {"flaky": 6}

    async def test_a_crash_after_a_long_healthy_run_waits_the_first_delay_again(self) -> None:
        now = [0.0]
        sleep = Recorded()
        supervisor = Supervisor(
            backoff=Backoff(first=1.0, cap=60.0, healthy_after=30.0),
            sleep=sleep,
            clock=lambda: now[0],
        )
        run_times = iter([0.0, 0.0, 45.0, 0.0])

        async def task(stop: asyncio.Event) -> None:
            now[0] += next(run_times, 0.0)
            if len(sleep.delays) < 4:
                raise RuntimeError("bug")
            await stop.wait()

        supervisor.start("flaky", task)
        while len(sleep.delays) < 4:  # noqa: ASYNC110 (the fake sleep has no event to wait on)
            await asyncio.sleep(0)
        await asyncio.wait_for(supervisor.shutdown(), DEADLINE)

        # The third run lasted 45 s: its crash counts as the first of a new row.
        assert sleep.delays == [1.0, 2.0, 1.0, 2.0]

    async def test_a_task_that_finishes_is_not_started_again(self) -> None:
        runs = 0

        async def once(_: asyncio.Event) -> None:
            nonlocal runs
            runs += 1

        supervisor = Supervisor(sleep=Recorded())
        supervisor.start("one-off", once)
        await asyncio.wait_for(supervisor.shutdown(), DEADLINE)

        assert (runs, supervisor.failures) == (1, {"one-off": 0})

    async def test_shutdown_cuts_a_backoff_short(self) -> None:
        async def forever(_: float) -> None:
            await asyncio.Event().wait()

        supervisor = Supervisor(sleep=forever)
        crashed = asyncio.Event()

        async def task(_: asyncio.Event) -> None:
            crashed.set()
            raise RuntimeError("bug")

        supervisor.start("crasher", task)
        await asyncio.wait_for(crashed.wait(), DEADLINE)
        await asyncio.wait_for(supervisor.shutdown(), DEADLINE)

        assert supervisor.failures == {"crasher": 1}


class TestCrashLog:
    async def test_a_bug_is_logged_with_its_traceback(self, log: pytest.LogCaptureFixture) -> None:
        supervisor = Supervisor(sleep=Recorded())

        await run_until_steady(supervisor, "flusher", CrashingTask(RuntimeError("bad bucket")))

        (record,) = [r for r in log.records if r.name == "watchkeeper.supervisor"]
        assert record.levelno == logging.ERROR
        assert "task 'flusher' crashed; restarting in 1 s" in record.getMessage()
        assert "Traceback" in log.text
        assert "RuntimeError: bad bucket" in log.text

    async def test_a_store_outage_is_one_warning_naming_the_cause(
        self, log: pytest.LogCaptureFixture
    ) -> None:
        refused = ConnectionRefusedError("Connect call failed ('127.0.0.1', 5432)")
        outage = DBAPIError("SELECT 1", {}, refused)
        supervisor = Supervisor(sleep=Recorded())

        await run_until_steady(supervisor, "dispatcher", CrashingTask(outage))

        (record,) = [r for r in log.records if r.name == "watchkeeper.supervisor"]
        assert record.levelno == logging.WARNING
        assert record.exc_info is None
        assert record.getMessage() == (
            "task 'dispatcher' crashed, the store is unavailable "
            "(ConnectionRefusedError: Connect call failed ('127.0.0.1', 5432)); "
            "restarting in 1 s"
        )
        assert supervisor.failures == {"dispatcher": 1}


class TestShutdown:
    async def test_every_step_runs_in_order_after_the_tasks_even_past_a_failing_one(
        self, log: pytest.LogCaptureFixture
    ) -> None:
        done: list[str] = []

        async def loop(stop: asyncio.Event) -> None:
            await stop.wait()
            done.append("loop stopped")

        supervisor = Supervisor(sleep=Recorded())
        supervisor.start("loop", loop)
        for name, error in [
            ("final flush", None),
            ("close monitor", RuntimeError("monitor already closed")),
            ("dispose store", None),
        ]:

            async def run(name: str = name, error: Exception | None = error) -> None:
                done.append(name)
                if error is not None:
                    raise error

            supervisor.on_shutdown(name, run)
        await asyncio.sleep(0)  # the loop is running

        await asyncio.wait_for(supervisor.shutdown(), DEADLINE)

        assert done == ["loop stopped", "final flush", "close monitor", "dispose store"]
        assert "shutdown step 'close monitor' failed; going on" in log.text
        assert "RuntimeError: monitor already closed" in log.text
