"""Brings a store's schema up to date with the Alembic migrations; safe to run every start.

On PostgreSQL an advisory lock serialises replicas that start at the same moment, so only
one of them migrates and the others find the work done. What was applied is read from the
store's own revision before and after, so a replica that found the work done reports none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.db.store import Store

# Inside the package, so a wheel installed anywhere can migrate its store.
_SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Any constant shared by all Watchkeeper processes; the value itself means nothing.
_MIGRATION_LOCK_ID = 0x77617463


@dataclass(frozen=True)
class Upgrade:
    """What one upgrade did: the revisions it applied, oldest first, and where the store is."""

    applied: tuple[str, ...]
    heads: tuple[str, ...]


def alembic_config() -> Config:
    """Alembic's configuration, built in code: no ``alembic.ini`` to ship or find."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("path_separator", "os")
    return config


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _upgrade(connection: Connection) -> Upgrade:
    if connection.dialect.name == "postgresql":
        # Waiting for another replica's migration, or a long one, is not a hung store: the
        # request-sized statement bound does not apply inside this transaction.
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    before = _current(connection)
    command.upgrade(config, "heads")
    after = _current(connection)
    scripts = ScriptDirectory.from_config(config)
    # Walks down from the new heads to the old ones (exclusive); reversed, oldest first.
    between = scripts.iterate_revisions(after, before)
    return Upgrade(applied=tuple(reversed([s.revision for s in between])), heads=after)


async def upgrade(store: Store) -> Upgrade:
    """Applies every pending migration to ``store`` and says which; a no-op when it is current."""
    async with store.engine.begin() as connection:
        return await connection.run_sync(_upgrade)
