"""A writer blocked by another connection's lock: a 503 at the store bound, and a log line
that says why in the store's own words, not just the error's class name."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from app.core.config import Settings
from app.core.errors import StoreUnavailable
from app.db.store import Store
from tests.faults.deadlines import ANSWER_DEADLINE, within

BOUND_SECONDS = 0.5
# What each store says when a writer waited out the bound.
CAUSE = {
    "sqlite": "database is locked",
    "postgresql": "canceling statement due to statement timeout",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"database_timeout_seconds": BOUND_SECONDS})


@contextlib.asynccontextmanager
async def lock_held(store_url: str, backend: str) -> AsyncIterator[None]:
    """Another connection holds what a writer of issues needs until the block ends."""
    holder = Store(store_url)
    try:
        async with holder.engine.connect() as connection:
            if backend == "sqlite":
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await connection.execute(text("LOCK TABLE issues IN EXCLUSIVE MODE"))
            yield
            await connection.rollback()
    finally:
        await holder.dispose()


async def report(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"title": "the export button does nothing", "issue_type": "bug"}
    request = client.post("/api/v1/maintenance/issues", json=body, headers=headers)
    return await within(ANSWER_DEADLINE, request, "reporting an issue")


async def test_a_writer_blocked_by_a_lock_gets_503_and_the_log_names_the_cause(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    store_url: str,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with lock_held(store_url, backend):
        blocked = await report(client, admin_headers)
    released = await report(client, admin_headers)

    assert blocked.status_code == 503
    assert blocked.json() == {"detail": StoreUnavailable().detail}
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(CAUSE[backend] in line for line in logged), logged
    assert released.status_code == 201
