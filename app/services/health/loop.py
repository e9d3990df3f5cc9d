"""The monitoring loop: a sweep per interval, on wall-clock slots, until told to stop.

Slots are ``floor(unix time / interval)``: every process sharing a store computes the same
ones, so the slot claim in the store elects one writer per interval, and a slow sweep never
pushes the schedule (the next sweep starts at the next slot's boundary, not "interval after
the last one finished"). Stopping waits for the sweep in flight. The monitor rides out store
outages itself; any other error is a bug and ends the loop, for the supervisor to log and
restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from app.db.store import is_outage
from app.schemas.health import CollectedSweep
from app.services.health.system_monitor import SystemMonitor

logger = logging.getLogger("watchkeeper.monitor")

HOUSEKEEPING_EVERY = 60  # sweeps


async def run_loop(
    monitor: SystemMonitor,
    *,
    interval: float,
    stop: asyncio.Event,
    source: str,
    on_sweep: Callable[[CollectedSweep], None] | None = None,
) -> None:
    """Sweeps once per slot until ``stop`` is set; ``on_sweep`` hears of each sweep run."""
    sweeps = 0
    while not stop.is_set():
        slot = int(time.time() // interval)
        collected = await monitor.collect(source=source, slot=slot)
        if collected is not None:
            sweeps += 1
            if on_sweep is not None:
                on_sweep(collected)
            if sweeps % HOUSEKEEPING_EVERY == 1:
                await _housekeeping(monitor)
        next_start = (slot + 1) * interval
        delay = max(next_start - time.time(), 0.0)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            continue


async def _housekeeping(monitor: SystemMonitor) -> None:
    try:
        removed = await monitor.housekeeping()
    except Exception as error:
        if not is_outage(error):
            raise
        logger.warning(
            "history clean-up skipped, the store is unavailable: %s", type(error).__name__
        )
        return
    if removed:
        logger.info("deleted %d expired sweeps", removed)
