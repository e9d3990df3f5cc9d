"""The SQL database check: a ``SELECT 1`` round trip on any SQLAlchemy async URL.

Given the application's own ``AsyncEngine`` it also reports that engine's pool, the figure
that shows a starved application before the database notices. On PostgreSQL it reads
connections in use against ``max_connections``, the database size and the oldest open
transaction (one left open blocks vacuum and holds locks); on SQLite the file's size.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, QueuePool

from app.schemas.targets import NetworkTarget, PercentThresholds
from app.services.health.checks.base import (
    CheckKind,
    Finding,
    Gauge,
    percent_of,
    rate_gauges,
    timed,
)
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentKind, ComponentStatus, worst_status

# Sync driver names people write by habit, mapped to the async driver that is installed.
_ASYNC_SQL_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


class DatabaseTarget(NetworkTarget, PercentThresholds):
    """Any SQL database SQLAlchemy reaches asynchronously; thresholds rate connection use."""

    kind: Literal[ComponentKind.DATABASE] = ComponentKind.DATABASE
    degraded_transaction_s: float | None = Field(
        default=300.0, gt=0, description="A transaction open longer than this degrades."
    )

    @field_validator("url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError("expected a SQLAlchemy URL such as postgresql+asyncpg://host/db")
        return f"{_ASYNC_SQL_DRIVERS.get(scheme.lower(), scheme)}://{rest}"


_POSTGRES_FIGURES = text(
    """
    SELECT
      (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
        AS connections,
      current_setting('max_connections')::int AS max_connections,
      current_setting('superuser_reserved_connections')::int AS reserved_connections,
      pg_database_size(current_database()) AS database_bytes,
      (SELECT coalesce(extract(epoch FROM max(clock_timestamp() - xact_start)), 0)
         FROM pg_stat_activity
        WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()) AS longest_transaction_s,
      current_setting('server_version') AS server_version
    """
)


def _standalone_engine(target: DatabaseTarget) -> AsyncEngine:
    # No pool: each check opens one connection and closes it, as a new client would.
    connect_args: dict[str, Any] = {}
    if target.url.startswith("postgresql+asyncpg"):
        # A backstop only: the runner's own timeout is the one that ends the check.
        connect_args["timeout"] = target.timeout_s + 1.0
    return create_async_engine(target.url, poolclass=NullPool, connect_args=connect_args)


def pool_state(engine: AsyncEngine) -> dict[str, Any]:
    """How many of the engine's pooled connections are in use, idle and overflowing."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return {"pool_class": type(pool).__name__}
    return {
        "pool_class": type(pool).__name__,
        "size": pool.size(),
        "checked_out": pool.checkedout(),
        "checked_in": pool.checkedin(),
        "overflow": pool.overflow(),
    }


async def _postgres_figures(connection: AsyncConnection) -> dict[str, Any]:
    row = (await connection.execute(_POSTGRES_FIGURES)).mappings().one()
    figures = dict(row)
    usable = figures["max_connections"] - figures["reserved_connections"]
    figures["longest_transaction_s"] = round(float(figures["longest_transaction_s"]), 1)
    figures["connections_percent"] = percent_of(figures["connections"], usable)
    return figures


async def _sqlite_figures(connection: AsyncConnection) -> dict[str, Any]:
    page_count = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
    page_size = (await connection.execute(text("PRAGMA page_size"))).scalar_one()
    journal_mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
    return {"database_bytes": page_count * page_size, "journal_mode": journal_mode}


async def _dialect_figures(connection: AsyncConnection) -> dict[str, Any]:
    match connection.dialect.name:
        case "postgresql":
            return await _postgres_figures(connection)
        case "sqlite":
            return await _sqlite_figures(connection)
        case _:
            return {}


def judge_database(target: DatabaseTarget, latency_ms: float, figures: dict[str, Any]) -> Finding:
    """Rate connection use and the oldest transaction; the round trip alone means healthy."""
    gauges = []
    if "connections_percent" in figures:
        gauges.append(Gauge("connections", figures["connections_percent"]))
    status, summary = rate_gauges(gauges, target)
    parts = [f"SELECT 1 in {latency_ms:.1f} ms"] + ([summary] if summary else [])
    longest = figures.get("longest_transaction_s", 0.0)
    limit = target.degraded_transaction_s
    if limit is not None and longest > limit:
        parts.append(f"a transaction open for {longest:.0f} s (> {limit:g} s)")
        status = worst_status([status, ComponentStatus.DEGRADED])
    return Finding(status, latency_ms, "; ".join(parts), figures)


async def probe(target: DatabaseTarget, context: CheckContext) -> Finding:
    """Round-trip ``SELECT 1`` (through the application's engine of that name, if it has one,
    or a fresh connection) and rate the figures."""
    engine = context.engines.get(target.name)
    figures: dict[str, Any] = {}
    if engine is not None:
        # Read before we take a connection ourselves, so the figures are the application's.
        figures["pool"] = pool_state(engine)
    own_engine = engine is None
    engine = engine if engine is not None else _standalone_engine(target)
    try:
        async with engine.connect() as connection:
            _, latency_ms = await timed(connection.execute(text("SELECT 1")))
            figures |= await _dialect_figures(connection)
            figures["dialect"] = connection.dialect.name
    finally:
        if own_engine:
            await engine.dispose()
    return judge_database(target, latency_ms, figures)


KIND = CheckKind(
    target=DatabaseTarget,
    probe=probe,
    # Driver errors arrive wrapped in SQLAlchemyError; a refused or reset socket as OSError.
    failures=(SQLAlchemyError, OSError),
    component_type="datastore",
)
