"""``watchkeeper db upgrade`` says what it did: the migrations it applied, or that none were due."""

from __future__ import annotations

import asyncio
import os

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from app.cli import main
from app.core.config import Settings
from app.db import migrate
from app.db.store import Store
from tests.test_cli import sqlite_env  # noqa: F401  (a store of the test's own, for the CLI)

runner = CliRunner()


def every_revision() -> list[str]:
    """The revisions the package ships, oldest first."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


async def upgrade_to(revision: str) -> None:
    """Migrates the CLI's store only as far as ``revision``, as an older release left it."""
    store = Store(os.environ["WATCHKEEPER_DATABASE_URL"])

    def upgrade(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with store.engine.begin() as connection:
            await connection.run_sync(upgrade)
    finally:
        await store.dispose()


@pytest.mark.usefixtures("sqlite_env")
class TestDbUpgrade:
    def test_new_store_gets_every_migration_then_is_up_to_date(self) -> None:
        revisions = every_revision()
        head = revisions[-1]

        first = runner.invoke(main, ["db", "upgrade"])
        second = runner.invoke(main, ["db", "upgrade"])

        assert first.exit_code == 0, first.output
        assert first.stdout.strip() == (
            f"Applied {len(revisions)} migrations ({', '.join(revisions)}); the store is at {head}."
        )
        assert second.exit_code == 0, second.output
        assert second.stdout.strip() == f"The store is already up to date (at {head})."

    def test_older_store_gets_only_the_missing_migrations(self) -> None:
        *older, newest = every_revision()
        asyncio.run(upgrade_to(older[-1]))

        result = runner.invoke(main, ["db", "upgrade"])

        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == (
            f"Applied 1 migration ({newest}); the store is at {newest}."
        )


class TestUpgradeReport:
    async def test_current_store_reports_nothing_applied(self, settings: Settings, app) -> None:
        store = Store(settings.database_url)
        try:
            done = await migrate.upgrade(store)
        finally:
            await store.dispose()

        assert done.applied == ()
        assert set(done.heads) == set(
            ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
        )
