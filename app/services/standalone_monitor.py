"""The monitor run outside the server, as ``watchkeeper monitor`` and
``scripts/monitor_system.py`` run it: one sweep, or one per interval until told to stop.

Both write to the same store as the server and evaluate the same rules (see
:mod:`app.services.monitoring`); with an interval, several processes (or the server's own
loop) share each interval's sweep through the lease in the store. The commands only parse
their arguments and print what these functions hand them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.core.config import Settings
from app.db import migrate
from app.db.store import Store
from app.schemas.health import CollectedSweep
from app.services.health import run_loop
from app.services.monitoring import Monitoring, build_monitoring
from app.services.supervisor import Supervisor, cause
from app.vocabulary.health import ComponentStatus

SOURCE = "script"  # how stored sweeps name the command that ran them

SweepObserver = Callable[[CollectedSweep], None]


@dataclass(frozen=True)
class Session:
    """The monitoring of one command run, and why its store could not be migrated, if so."""

    monitoring: Monitoring
    store_url: str
    store_problem: str | None


@dataclass(frozen=True)
class Outcome:
    """What one sweep found, and why its notifications could not be sent now, if so."""

    status: ComponentStatus
    undelivered: str | None


@asynccontextmanager
async def monitoring_session(settings: Settings) -> AsyncIterator[Session]:
    """The monitoring on the configured store, migrated if it answers; closed on exit."""
    store = Store(settings.database_url, timeout=settings.database_timeout_seconds)
    monitoring = build_monitoring(store, settings)
    try:
        problem = None
        try:
            await migrate.upgrade(store)
        except Exception as error:  # monitoring goes on; results wait in memory
            problem = str(error)
        yield Session(monitoring, store.masked_url, problem)
    finally:
        await monitoring.monitor.aclose()
        await store.dispose()


async def sweep_once(monitoring: Monitoring, *, on_sweep: SweepObserver) -> Outcome:
    """One sweep, stored and shown to ``on_sweep``, then one try at its notifications."""
    collected = await monitoring.monitor.collect(source=SOURCE)
    assert collected is not None  # only a sweep of a numbered slot can be taken by another
    on_sweep(collected)
    try:
        # One try now; what fails stays queued in the store for the server's dispatcher.
        await monitoring.dispatcher.deliver_due()
    except Exception as error:
        return Outcome(collected.status, cause(error))
    return Outcome(collected.status, None)


async def sweep_every(
    monitoring: Monitoring, *, interval: int, stop: asyncio.Event, on_sweep: SweepObserver
) -> None:
    """A sweep per interval, and the notifications they raise, until ``stop`` is set; the
    sweep in flight is finished first."""
    supervisor = Supervisor()

    async def monitor_loop(stopping: asyncio.Event) -> None:
        await run_loop(
            monitoring.monitor, interval=interval, stop=stopping, source=SOURCE, on_sweep=on_sweep
        )

    supervisor.start("monitor_loop", monitor_loop)
    supervisor.start("alert_dispatcher", monitoring.dispatcher.run)
    await stop.wait()
    await supervisor.shutdown()
