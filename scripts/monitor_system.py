"""Monitoring from the command line: one sweep (``--once``) or one per interval.

    python scripts/monitor_system.py --once         # a table; exit 0/1/2 healthy/degraded/unhealthy
    python scripts/monitor_system.py --once --json
    python scripts/monitor_system.py --interval 60     # until SIGINT/SIGTERM

Both write to the same store as the server (``WATCHKEEPER_DATABASE_URL`` or the SQLite
default) and evaluate the same rules; with ``--interval`` several processes (or the server's
own loop) share each interval's sweep through the lease in the store. This is
``watchkeeper monitor`` under the spec's name: it parses the same options and runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console

from app.cli import run_monitor
from app.core.config import ConfigurationError, get_settings
from app.services.monitoring import check_configuration


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Watchkeeper's monitoring sweep.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one sweep, then exit 0/1/2")
    mode.add_argument("--interval", type=int, metavar="SECONDS", help="a sweep per interval")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.interval is not None and args.interval < 1:
        parser.error("--interval must be at least 1 second")
    try:
        settings = get_settings()
        check_configuration(settings)  # the targets, which the settings hold raw
    except ConfigurationError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", soft_wrap=True)
        return 3
    return await run_monitor(settings, interval=args.interval, as_json=args.json)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
