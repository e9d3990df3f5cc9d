"""The SQL check against the real PostgreSQL on this machine and a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.services.health.checks import CheckContext, run_check
from app.services.health.checks.sql import DatabaseTarget
from app.vocabulary.health import ComponentStatus


def database(url: str, **options: object) -> DatabaseTarget:
    return DatabaseTarget.model_validate({"name": "db", "kind": "database", "url": url, **options})


@pytest.fixture
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, pool_size=3)
    yield engine
    await engine.dispose()


class TestPostgres:
    async def test_reports_real_pg_stat_figures(self, postgres_url: str) -> None:
        result = await run_check(database(postgres_url))
        details = result.details
        assert result.status is ComponentStatus.HEALTHY
        assert result.latency_ms is not None and 0 < result.latency_ms < 1000
        assert details["dialect"] == "postgresql"
        assert details["max_connections"] > details["reserved_connections"] >= 0
        assert 1 <= details["connections"] <= details["max_connections"]
        assert 0 < details["connections_percent"] < 100
        assert details["database_bytes"] > 1_000_000  # even an empty database has catalogs
        assert details["longest_transaction_s"] >= 0
        assert details["server_version"][0].isdigit()
        assert result.message.startswith("SELECT 1 in ")

    async def test_near_the_connection_limit_is_degraded(self, postgres_url: str) -> None:
        # Our own connection alone is over 0.5 % of any max_connections up to 200.
        result = await run_check(database(postgres_url, degraded_percent=0.5))
        assert result.status is ComponentStatus.DEGRADED
        assert "connections" in result.message and ">= 0.5%" in result.message

    async def test_a_long_open_transaction_degrades(
        self, postgres_url: str, postgres_engine: AsyncEngine
    ) -> None:
        async with postgres_engine.connect() as idle_in_transaction:
            await idle_in_transaction.execute(text("SELECT 1"))  # opens the transaction
            await asyncio.sleep(0.6)
            result = await run_check(database(postgres_url, degraded_transaction_s=0.5))
        assert result.status is ComponentStatus.DEGRADED
        assert "a transaction open for" in result.message

    async def test_reports_the_pool_of_the_applications_engine(
        self, postgres_url: str, postgres_engine: AsyncEngine
    ) -> None:
        context = CheckContext(engines={"db": postgres_engine})
        async with postgres_engine.connect():
            result = await run_check(database(postgres_url), context)
        assert result.status is ComponentStatus.HEALTHY
        assert result.details["pool"]["size"] == 3
        assert result.details["pool"]["checked_out"] == 1

    async def test_a_missing_database_is_unhealthy_and_named(self, postgres_url: str) -> None:
        url = postgres_url.rsplit("/", 1)[0] + "/watchkeeper_no_such_db"
        result = await run_check(database(url))
        assert result.status is ComponentStatus.UNHEALTHY
        assert 'database "watchkeeper_no_such_db" does not exist' in result.message
        assert result.latency_ms is None

    async def test_a_wrong_password_never_shows_in_the_result(self, postgres_url: str) -> None:
        # Trust auth accepts any password, so this proves masking, not authentication.
        url = postgres_url.replace("://postgres@", "://postgres:hunter2secret@")
        result = await run_check(database(url.rsplit("/", 1)[0] + "/watchkeeper_no_such_db"))
        assert "hunter2secret" not in result.model_dump_json()
        assert result.details["url"].startswith("postgresql+asyncpg://postgres:***@")


class TestSqlite:
    async def test_the_default_store_reports_its_size_and_pool(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'watchkeeper.db'}"
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        try:
            result = await run_check(database(url), CheckContext(engines={"db": engine}))
        finally:
            await engine.dispose()
        assert result.status is ComponentStatus.HEALTHY
        assert result.details["dialect"] == "sqlite"
        assert result.details["database_bytes"] > 0
        assert result.details["pool"]["pool_class"] == "AsyncAdaptedQueuePool"

    async def test_a_corrupt_store_file_is_unhealthy(self, tmp_path: Path) -> None:
        path = tmp_path / "watchkeeper.db"
        path.write_bytes(b"this was never a SQLite database " * 200)
        result = await run_check(database(f"sqlite:///{path}"))
        assert result.status is ComponentStatus.UNHEALTHY
        assert "file is not a database" in result.message
