"""Brings a store's schema up to date with the Alembic migrations; safe to run every start.

On PostgreSQL an advisory lock serialises replicas that start at the same moment, so only
one of them migrates and the others find the work done.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.db.store import Store

# Inside the package, so a wheel installed anywhere can migrate its store.
_SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Any constant shared by all Watchkeeper processes; the value itself means nothing.
_MIGRATION_LOCK_ID = 0x77617463


def alembic_config() -> Config:
    """Alembic's configuration, built in code: no ``alembic.ini`` to ship or find."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("path_separator", "os")
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def upgrade(store: Store) -> None:
    """Applies every pending migration to ``store``; a no-op when it is current."""
    async with store.engine.begin() as connection:
        await connection.run_sync(_upgrade)
