"""What the benchmarks share: a PostgreSQL database of their own, and how timings are summed up.

The server comes from ``WATCHKEEPER_TEST_POSTGRES_URL`` (default: the machine's local one);
each run creates a fresh database there and drops it afterwards, whatever happens.
"""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.store import Store

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def on_server(base: str, statement: str) -> None:
    """Runs one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    admin = Store(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@asynccontextmanager
async def scratch_postgres() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped when the block ends."""
    base = os.environ.get("WATCHKEEPER_TEST_POSTGRES_URL", DEFAULT_SERVER)
    name = f"watchkeeper_bench_{uuid.uuid4().hex[:8]}"
    await on_server(base, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        await on_server(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def median_and_p95(samples: list[float]) -> dict[str, float]:
    """Median and p95 (nearest rank) of timings in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2)}
