"""Upgrading a store of the release before the service dimension keeps its request history
as Watchkeeper's own, and lets tokens of new kinds in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import JSON, LargeBinary, column, insert, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnClause, TableClause

from app.db import migrate
from app.db.base import UTCDateTime
from app.db.models import RequestHour, RequestMinute
from app.db.store import Store
from app.services.performance.figures import Endpoint, read_aggregates
from app.vocabulary.performance import RequestSource
from app.vocabulary.sketch import QuantileSketch

BEFORE = "0006"
MINUTE = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
HOUR = datetime(2026, 11, 20, 8, tzinfo=UTC)


def migrate_to(revision: str) -> Callable[[Connection], None]:
    """Moves a connection's store to ``revision``: down to an old one, or up to head."""

    def run(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    return run


@pytest.fixture
async def old_store(store_url: str) -> AsyncIterator[Store]:
    """The test's store as the release before 0007 left it; back at head afterwards."""
    store = Store(store_url)
    async with store.engine.begin() as connection:
        await connection.run_sync(migrate_to(BEFORE))
    try:
        yield store
    finally:
        async with store.engine.begin() as connection:
            await connection.run_sync(migrate_to("head"))
        await store.dispose()


def old_table(name: str, *columns: ColumnClause[object]) -> TableClause:
    """A request table as 0005 made it: no service, no source."""
    return table(
        name,
        *columns,
        *(column(name) for name in ("route", "method", "status_class", "count", "sum_ms")),
        column("max_ms"),
        column("sketch", LargeBinary()),
        column("exemplars", JSON()),
    )


def tally(count: int, duration_ms: float) -> dict[str, object]:
    """The columns of a request row of 0005's tables."""
    return {
        "route": "/api/v1/maintenance/issues",
        "method": "GET",
        "status_class": "2xx",
        "count": count,
        "sum_ms": count * duration_ms,
        "max_ms": duration_ms,
        "sketch": QuantileSketch.of([duration_ms] * count).to_bytes(),
        "exemplars": [],
    }


class TestUpgradeFrom0006:
    async def test_stored_requests_become_watchkeepers_own(self, old_store: Store) -> None:
        async with old_store.engine.begin() as connection:
            old_minutes = old_table(
                "request_minutes",
                column("minute", UTCDateTime()),
                column("process"),
                column("rolled_up"),
            )
            await connection.execute(
                insert(old_minutes),
                {**tally(7, 12.0), "process": "web-1", "minute": MINUTE, "rolled_up": False},
            )
            await connection.execute(
                insert(old_table("request_hours", column("hour", UTCDateTime()))),
                {**tally(40, 30.0), "hour": HOUR},
            )
            await connection.run_sync(migrate_to("head"))

        async with old_store.unit_of_work() as session:
            minutes = (await session.execute(select(RequestMinute))).scalars().all()
            hours = (await session.execute(select(RequestHour))).scalars().all()
            found = await read_aggregates(session, HOUR, MINUTE.replace(minute=59))

        assert [(m.service, m.source, m.count) for m in minutes] == [
            ("watchkeeper", RequestSource.SELF, 7)
        ]
        assert [(h.service, h.source, h.count) for h in hours] == [
            ("watchkeeper", RequestSource.SELF, 40)
        ]
        issues = Endpoint("watchkeeper", "GET", "/api/v1/maintenance/issues")
        assert found[issues].requests == 47

    async def test_a_token_kind_no_release_listed_is_stored(self, old_store: Store) -> None:
        async with old_store.engine.begin() as connection:
            await connection.run_sync(migrate_to("head"))
            await connection.execute(
                text(
                    "INSERT INTO users (username, role, is_active, created_at) "
                    "VALUES ('exporter', 'user', true, :now)"
                ),
                {"now": MINUTE},
            )
            # The code validates kinds (``ingest`` among them), not the database.
            await connection.execute(
                text(
                    "INSERT INTO api_tokens (user_id, name, kind, token_hash, hint, created_at) "
                    "SELECT id, 'otel', 'future-kind', :digest, 'wk_', :now FROM users "
                    "WHERE username = 'exporter'"
                ),
                {"digest": "0" * 64, "now": MINUTE},
            )
            kinds = set((await connection.execute(text("SELECT kind FROM api_tokens"))).scalars())

        assert "future-kind" in kinds
