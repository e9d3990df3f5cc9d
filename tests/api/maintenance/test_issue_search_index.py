"""The text search indexes of migrations 0009, 0012 and 0014: made on a store that already
has issues, kept in step with every change of an issue's text and times, gone again after a
downgrade."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from alembic import command
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import migrate
from app.db.models import Issue, User
from app.db.store import Store
from app.vocabulary.accounts import Role
from app.vocabulary.issues import IssueStatus, IssueType, Priority
from tests.api.maintenance.conftest import ISSUES, Clock, file_issue, move
from tests.conftest import Account

BEFORE = "0008"
FILED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def indexed_ids(store_url: str, phrase: str) -> list[int]:
    """What SQLite's FTS5 table itself answers for ``phrase``, the issues' text left aside."""
    store = Store(store_url)
    try:
        async with store.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT rowid FROM issue_search WHERE issue_search MATCH :q ORDER BY rowid"),
                {"q": f'"{phrase}"'},
            )
            return [row[0] for row in rows]
    finally:
        await store.dispose()


async def index_plan(store_url: str, query: str) -> str:
    """PostgreSQL's plan for ``query`` when it may use any index rather than scan."""
    store = Store(store_url)
    try:
        async with store.engine.connect() as connection:
            await connection.execute(text("SET enable_seqscan = off"))
            plan = await connection.execute(text(f"EXPLAIN {query}"))
            return " ".join(row[0] for row in plan)
    finally:
        await store.dispose()


class TestSqliteIndexInStep:
    @pytest.fixture
    def backend(self) -> str:
        return "sqlite"

    async def test_filed_and_edited_text_is_indexed_and_the_old_text_forgotten(
        self, client: httpx.AsyncClient, rita: Account, store_url: str
    ) -> None:
        first = await file_issue(client, rita, title="Export fails", description="no file")
        second = await file_issue(client, rita, title="Exporter hangs", description="spins")
        await client.patch(
            f"{ISSUES}/{first['id']}", json={"title": "Import fails"}, headers=rita.headers
        )

        assert await indexed_ids(store_url, "xport") == [second["id"]]
        assert await indexed_ids(store_url, "mport") == [first["id"]]
        assert await indexed_ids(store_url, "no file") == [first["id"]]

    async def test_a_deleted_issue_leaves_the_index(
        self, client: httpx.AsyncClient, rita: Account, store_url: str
    ) -> None:
        kept = await file_issue(client, rita, title="Export fails")
        gone = await file_issue(client, rita, title="Export hangs")
        store = Store(store_url)
        async with store.engine.begin() as connection:
            await connection.execute(text("DELETE FROM issues WHERE id = :id"), {"id": gone["id"]})
        await store.dispose()

        assert await indexed_ids(store_url, "Export") == [kept["id"]]


class TestPostgresIndex:
    @pytest.fixture
    def backend(self) -> str:
        return "postgresql"

    async def test_the_trigram_index_serves_the_search_predicate(
        self, client: httpx.AsyncClient, store_url: str
    ) -> None:
        plan = await index_plan(
            store_url,
            "SELECT count(*) FROM issues "
            "WHERE title ILIKE '%xport%' OR description ILIKE '%xport%'",
        )

        assert "ix_issues_text_trgm" in plan

    async def test_the_folded_copy_follows_every_change_of_the_text_and_its_times(
        self,
        client: httpx.AsyncClient,
        rita: Account,
        dev: Account,
        clock: Clock,
        store_url: str,
    ) -> None:
        first = await file_issue(client, rita, title="Export FAILS", description="No File")
        gone = await file_issue(client, rita, title="Exporter hangs", description="spins")
        clock.advance(hours=1)
        await client.patch(
            f"{ISSUES}/{first['id']}", json={"title": "Import Fails"}, headers=rita.headers
        )
        clock.advance(hours=1)
        await move(client, dev, first["id"], "triaged")
        shown = (await client.get(f"{ISSUES}/{first['id']}", headers=rita.headers)).json()
        store = Store(store_url)
        async with store.engine.begin() as connection:
            await connection.execute(text("DELETE FROM issues WHERE id = :id"), {"id": gone["id"]})
            copies = (
                await connection.execute(text("SELECT * FROM issue_texts ORDER BY issue_id"))
            ).all()
        await store.dispose()

        assert shown["updated_at"] != shown["created_at"]
        assert [tuple(row) for row in copies] == [
            (
                first["id"],
                "import fails",
                "no file",
                datetime.fromisoformat(shown["created_at"]),
                datetime.fromisoformat(shown["updated_at"]),
            )
        ]

    async def test_a_step_down_to_0013_and_up_again_keeps_the_copy_in_step(
        self, store_url: str
    ) -> None:
        store = Store(store_url)
        try:
            async with store.engine.begin() as connection:
                await connection.run_sync(moved_to("0013"))
                await file_the_old_way(connection, "Export FAILS")
                before = (
                    await connection.execute(
                        text("SELECT issue_id, title, description FROM issue_texts")
                    )
                ).all()
            async with store.engine.begin() as connection:
                await connection.run_sync(moved_to("head"))
                after = (await connection.execute(text("SELECT * FROM issue_texts"))).all()
        finally:
            await store.dispose()

        copied = (1, "export fails", "from the release before")
        assert [tuple(row) for row in before] == [copied]
        assert [tuple(row) for row in after] == [(*copied, FILED, FILED)]

    async def test_a_count_reads_the_folded_copy_through_its_trigram_index(
        self, client: httpx.AsyncClient, store_url: str
    ) -> None:
        plan = await index_plan(
            store_url,
            "SELECT count(*) FROM issue_texts "
            "WHERE title LIKE lower('%XPORT%') OR description LIKE lower('%XPORT%')",
        )

        assert "ix_issue_texts_trgm" in plan


OLD_ISSUE: dict[str, object] = {
    "description": "from the release before",
    "issue_type": IssueType.BUG,
    "priority": Priority.HIGH,
    "status": IssueStatus.OPEN,
    "reporter_id": 900,
    "created_at": FILED,
    "updated_at": FILED,
    "sla_due_at": FILED,
}
# What 0009 and 0012 made, looked for after a downgrade to before both.
LEFTOVERS = {
    "sqlite": "SELECT name FROM sqlite_master WHERE name LIKE 'issue_search%'",
    "postgresql": (
        "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_issues_text_trgm' "
        "UNION ALL SELECT tablename FROM pg_tables WHERE tablename = 'issue_texts'"
    ),
}


def moved_to(revision: str) -> Callable[[Connection], None]:
    """Moves a connection's store to ``revision``: down to an old one, or up to head."""

    def run(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    return run


async def file_the_old_way(connection: AsyncConnection, *titles: str) -> None:
    """Issues written straight into the store (by a reporter of their own), as the release
    before 0009 left them: 0009 changes no column, only what indexes the text."""
    reporter = {"id": 900, "username": "old", "role": Role.USER, "created_at": FILED}
    await connection.execute(insert(User).values(reporter))
    for number, title in enumerate(titles, start=1):
        await connection.execute(insert(Issue).values(id=number, title=title, **OLD_ISSUE))


@pytest.fixture
async def filed_before_the_index(store_url: str) -> None:
    """The store as the release before 0009 left it, with two issues; the app, started
    next, migrates it as it starts."""
    store = Store(store_url)
    async with store.engine.begin() as connection:
        await connection.run_sync(moved_to(BEFORE))
        await file_the_old_way(connection, "Export fails", "Crash on save")
    await store.dispose()


class TestUpgradeAndDowngrade:
    async def test_issues_filed_before_the_index_are_found(
        self, filed_before_the_index: None, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(ISSUES, params={"q": "xport fa"}, headers=dev.headers)

        assert response.status_code == 200, response.text
        assert [item["title"] for item in response.json()["items"]] == ["Export fails"]

    async def test_a_downgrade_takes_the_index_away_and_writes_go_on(
        self, store_url: str, backend: str
    ) -> None:
        store = Store(store_url)
        try:
            async with store.engine.begin() as connection:
                await connection.run_sync(moved_to(BEFORE))
                leftovers = (await connection.execute(text(LEFTOVERS[backend]))).all()
                await file_the_old_way(connection, "Export fails")  # no trigger in the way
            async with store.engine.begin() as connection:
                await connection.run_sync(moved_to("head"))
        finally:
            await store.dispose()

        assert leftovers == []
