"""Secrets stay secret, and a restart on the same store keeps everything."""

from __future__ import annotations

import logging

import httpx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from app.core.config import Settings
from app.core.logging import JsonFormatter, TextFormatter
from app.db import migrate
from app.db.base import Base
from app.db.models.issues import compared_with_models
from app.db.store import Store
from app.main import create_app
from app.vocabulary.accounts import Role
from tests.conftest import MakeAccount, bearer

PASSWORD = "hunter2-but-longer"


async def every_stored_value(store: Store) -> str:
    """All rows of all tables, as one string to search."""
    dump: list[str] = []
    async with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            dump.extend(repr(tuple(row)) for row in rows)
    return "\n".join(dump)


class TestSecrets:
    async def test_passwords_and_tokens_are_never_stored_or_logged_in_clear(
        self, client: httpx.AsyncClient, make_account: MakeAccount, app, admin_headers
    ) -> None:
        lines: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                lines.append(TextFormatter().format(record))
                lines.append(JsonFormatter().format(record))

        keeper = Keep()
        logging.getLogger("watchkeeper").addHandler(keeper)
        try:
            dana = await make_account("dana", Role.DEVELOPER, password=PASSWORD)
            login = await client.post(
                "/api/v1/auth/token", data={"username": "dana", "password": PASSWORD}
            )
            session_token = login.json()["access_token"]
            await client.get("/api/v1/users/me", headers=bearer(session_token))
            await client.get("/api/v1/users/me", headers=bearer("wk_wrong-token"))
        finally:
            logging.getLogger("watchkeeper").removeHandler(keeper)

        stored = await every_stored_value(app.state.store)
        logged = "\n".join(lines)
        for secret in (PASSWORD, dana.token, session_token, admin_headers["Authorization"][7:]):
            assert secret not in stored
            assert secret not in logged
        assert "$argon2id$" in stored
        assert logged  # the requests were logged, just without secrets


class TestRestart:
    async def test_restart_keeps_users_and_tokens(
        self, settings: Settings, make_account: MakeAccount, client: httpx.AsyncClient
    ) -> None:
        erin = await make_account("erin", Role.USER)

        restarted = create_app(settings)
        async with restarted.router.lifespan_context(restarted):
            transport = httpx.ASGITransport(app=restarted)
            async with httpx.AsyncClient(transport=transport, base_url="http://wk") as again:
                me = await again.get("/api/v1/users/me", headers=erin.headers)

        assert me.status_code == 200
        assert me.json()["username"] == "erin"

    async def test_migrations_are_idempotent(self, settings: Settings, app) -> None:
        store = Store(settings.database_url)
        await migrate.upgrade(store)
        await migrate.upgrade(store)

        async with store.engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
            admins = await connection.scalar(text("SELECT count(*) FROM users"))
        await store.dispose()
        heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
        assert set(current) == set(heads)
        assert admins == 1


class TestMigrationsMatchModels:
    async def test_migrated_schema_equals_the_models(self, settings: Settings, app) -> None:
        store = Store(settings.database_url)

        def differences(sync_connection):
            options = {"compare_type": True, "include_name": compared_with_models}
            context = MigrationContext.configure(sync_connection, opts=options)
            return compare_metadata(context, Base.metadata)

        async with store.engine.connect() as connection:
            found = await connection.run_sync(differences)
        await store.dispose()
        assert found == []
