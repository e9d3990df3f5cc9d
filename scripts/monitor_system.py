"""Monitoring from the command line: one sweep (``--once``) or one per interval.

    python scripts/monitor_system.py --once         # a table; exit 0/1/2 healthy/degraded/unhealthy
    python scripts/monitor_system.py --once --json
    python scripts/monitor_system.py --interval 60     # until SIGINT/SIGTERM

Both write to the same store as the server (``WATCHKEEPER_DATABASE_URL`` or the SQLite
default) and evaluate the same rules; with ``--interval`` several processes (or the server's
own loop) share each interval's sweep through the lease in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from rich.console import Console
from rich.table import Table

from app.core.config import ConfigurationError, get_settings
from app.db import migrate
from app.db.store import Store
from app.schemas.health import CollectedSweep
from app.services.health.loop import run_loop
from app.services.monitoring import Monitoring, build_monitoring
from app.vocabulary.health import ComponentStatus

EXIT_CODES = {
    ComponentStatus.HEALTHY: 0,
    ComponentStatus.DEGRADED: 1,
    ComponentStatus.UNKNOWN: 1,
    ComponentStatus.UNHEALTHY: 2,
}
_COLOURS = {
    ComponentStatus.HEALTHY: "green",
    ComponentStatus.DEGRADED: "yellow",
    ComponentStatus.UNKNOWN: "magenta",
    ComponentStatus.UNHEALTHY: "red",
}


def show(sweep: CollectedSweep, *, as_json: bool, console: Console) -> None:
    """Prints a sweep as a table, or as one JSON document."""
    if as_json:
        print(json.dumps(sweep.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"Watchkeeper sweep at {sweep.checked_at:%Y-%m-%d %H:%M:%S} UTC")
    for column in ("component", "kind", "status", "latency", "message"):
        table.add_column(column)
    for result in sweep.components:
        latency = f"{result.latency_ms:.1f} ms" if result.latency_ms is not None else "-"
        status = f"[{_COLOURS[result.status]}]{result.status.value}[/]"
        table.add_row(result.name, result.kind.value, status, latency, result.message)
    console.print(table)
    stored = "stored" if sweep.stored else "NOT stored (store unreachable; kept in memory)"
    console.print(
        f"Overall: [{_COLOURS[sweep.status]}]{sweep.status.value}[/] "
        f"in {sweep.duration_ms:.0f} ms, {stored}"
    )


async def once(monitoring: Monitoring, *, as_json: bool, console: Console) -> int:
    collected = await monitoring.monitor.collect(source="script")
    assert collected is not None
    show(collected, as_json=as_json, console=console)
    try:
        # One try now; what fails stays queued in the store for the server's dispatcher.
        await monitoring.dispatcher.deliver_due()
    except Exception as error:
        console.print(f"[yellow]notifications not sent now:[/] {type(error).__name__}")
    return EXIT_CODES[collected.status]


async def repeat(monitoring: Monitoring, interval: int, *, as_json: bool, console: Console) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sweeps = 0

    def print_sweep(sweep: CollectedSweep) -> None:
        nonlocal sweeps
        sweeps += 1
        show(sweep, as_json=as_json, console=console)

    notifications = asyncio.create_task(monitoring.dispatcher.run(stop))
    await run_loop(
        monitoring.monitor, interval=interval, stop=stop, source="script", on_sweep=print_sweep
    )
    await notifications
    console.print(f"Stopped after {sweeps} sweep(s).", style="dim")
    return 0


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Watchkeeper's monitoring sweep.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one sweep, then exit 0/1/2")
    mode.add_argument("--interval", type=int, metavar="SECONDS", help="a sweep per interval")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.interval is not None and args.interval < 1:
        parser.error("--interval must be at least 1 second")
    console = Console(stderr=args.json)
    try:
        settings = get_settings()
    except ConfigurationError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", soft_wrap=True)
        return 3
    store = Store(settings.database_url)
    monitoring = build_monitoring(store, settings)
    try:
        try:
            await migrate.upgrade(store)
        except Exception as error:  # monitoring goes on; results wait in memory
            console.print(f"[yellow]store {store.masked_url} unavailable:[/] {error}")
        if args.once:
            return await once(monitoring, as_json=args.json, console=console)
        return await repeat(monitoring, args.interval, as_json=args.json, console=console)
    finally:
        await monitoring.monitor.aclose()
        await store.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
