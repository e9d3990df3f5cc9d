"""The test harness: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL and Redis come from ``WATCHKEEPER_TEST_POSTGRES_URL`` and
``WATCHKEEPER_TEST_REDIS_URL``. A developer without them sees those tests skipped with the
reason; under CI (``CI`` set) a missing or unreachable service fails the run instead.

Each test gets a clean store: a fresh copy of a migrated SQLite file, or a PostgreSQL
database (created once per run) whose tables are emptied before the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db import migrate
from app.db import models as _all_tables  # noqa: F401  (registers every table)
from app.db.base import Base
from app.db.store import Store
from app.main import create_app
from app.vocabulary.accounts import Role

if TYPE_CHECKING:
    from tests.api.maintenance.receivers import LocalPeer

ADMIN_TOKEN = "wk_test-admin-token-0123456789abcdefghijklmnopqrstuv"
BACKENDS = ("sqlite", "postgresql")


def service_url(variable: str, what: str) -> str:
    """The URL of a service the tests need; skip (laptop) or fail (CI) when it is missing."""
    url = os.environ.get(variable)
    if url:
        return url
    reason = f"{what} tests need {variable} (e.g. set by .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {variable}: {reason}")
    pytest.skip(reason)


def run_blocking(coroutine: Callable[[], Awaitable[None]]) -> None:
    """Runs a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine()).result()  # type: ignore[arg-type]


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


STORE_TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per run, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "watchkeeper.db"
    store = Store(f"sqlite+aiosqlite:///{path}")

    async def build() -> None:
        await migrate.upgrade(store)
        async with store.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await store.dispose()

    run_blocking(build)
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of this run's own, migrated once and dropped at the end."""
    base_url = make_url(service_url("WATCHKEEPER_TEST_POSTGRES_URL", "PostgreSQL"))
    base_url = base_url.set(drivername="postgresql+asyncpg")
    name = f"watchkeeper_test_{uuid.uuid4().hex[:10]}"
    url = base_url.set(database=name).render_as_string(hide_password=False)

    async def on_server(statement: str) -> None:
        admin = Store(base_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
        try:
            async with admin.engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await admin.dispose()

    async def create() -> None:
        await on_server(f'CREATE DATABASE "{name}"')
        store = Store(url)
        await migrate.upgrade(store)
        await store.dispose()

    async def drop() -> None:
        await on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        run_blocking(create)
    except OSError as error:
        _fail_or_skip(f"PostgreSQL at {base_url.render_as_string()} is unreachable: {error}")
    yield url
    run_blocking(drop)


async def _empty_postgres(url: str) -> None:
    store = Store(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with store.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await store.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which store this run of the test uses; the test id says it."""
    return str(request.param)


@pytest.fixture
async def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a clean, migrated store of the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "watchkeeper.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    await _empty_postgres(url)
    return url


@pytest.fixture
def settings(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of a test: its own store, no config file, a known admin token."""
    monkeypatch.setenv("WATCHKEEPER_CONFIG_FILE", str(tmp_path / "absent.toml"))
    return Settings(
        database_url=store_url,
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        monitor_in_process=False,
        alert_dispatch_in_process=False,
        # A host busy with other work must not turn a slow statement into a 503; the fault
        # tests that check the bound set their own.
        database_timeout_seconds=STORE_TIMEOUT_SECONDS,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A started Watchkeeper (migrated store, bootstrap admin), stopped after the test."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://watchkeeper") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return bearer(ADMIN_TOKEN)


@dataclass(frozen=True)
class Account:
    """A user created through the API, with a token to act as them."""

    id: int
    username: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> MakeAccount:
    """Creates a user with a role and an API token, as an admin would through the API."""

    async def make(username: str, role: Role = Role.USER, password: str | None = None) -> Account:
        body: dict[str, object] = {"username": username, "role": role.value}
        if password:
            body["password"] = password
        created = await client.post("/api/v1/users", json=body, headers=admin_headers)
        assert created.status_code == 201, created.text
        issued = await client.post(
            f"/api/v1/users/{username}/tokens", json={"name": "tests"}, headers=admin_headers
        )
        assert issued.status_code == 201, issued.text
        return Account(created.json()["id"], username, role, issued.json()["token"])

    return make


@pytest.fixture
async def peer() -> AsyncIterator[LocalPeer]:
    """A local service to watch and a webhook receiver (see ``LocalPeer``)."""
    from tests.api.maintenance.receivers import LocalPeer  # it needs this module's token

    server = LocalPeer()
    await server.start()
    yield server
    await server.close()
