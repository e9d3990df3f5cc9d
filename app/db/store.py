"""The store: one async engine and session factory per process, for SQLite or PostgreSQL.

SQLite gets WAL mode (readers never block the writer), enforced foreign keys and a busy
timeout, so the monitor loop and the API can share one file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

# Errors that mean the store went away rather than a bug of ours.
STORE_OUTAGES = (DisconnectionError, PoolTimeout, OSError)
# What drivers say when the store, not the statement, is the problem.
_OUTAGE_PHRASES = ("connection", "locked", "unable to open database", "disk i/o error")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the store cannot be reached or used right now."""
    if isinstance(error, DBAPIError):
        original = error.orig
        return (
            error.connection_invalidated
            or isinstance(original, STORE_OUTAGES)
            or any(phrase in str(original).lower() for phrase in _OUTAGE_PHRASES)
        )
    return isinstance(error, STORE_OUTAGES)


def masked_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, *, pool_size: int = 10, **options: Any) -> AsyncEngine:
    """An async engine for ``url`` with the settings each backend needs."""
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        **options,
    )


class Store:
    """The engine and session factory shared by the API, the monitor loop and the CLI."""

    def __init__(self, url: str, *, pool_size: int = 10, **options: Any) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, **options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def masked_url(self) -> str:
        return masked_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        """Raises unless the store answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
