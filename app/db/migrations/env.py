"""Alembic environment: migrates the connection handed over by ``app.db.migrate``.

Run without one, as ``alembic.command.revision(migrate.alembic_config(), autogenerate=True)``
does when a developer writes the next migration, it opens the configured store itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import app.db.models  # noqa: F401  (registers every table on the metadata)
from app.core.config import get_settings
from app.db.base import Base
from app.db.models.issues import compared_with_models
from app.db.store import Store

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=compared_with_models,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    store = Store(get_settings().database_url)
    try:
        async with store.engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await store.dispose()


given: Connection | None = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_standalone())
