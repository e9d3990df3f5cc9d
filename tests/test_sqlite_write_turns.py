"""SQLite takes one writer at a time: this process's writers wait their turn in order, in
the event loop, each wait bounded by the store's timeout, and every way a transaction ends
gives the turn back."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.core.config import Settings
from app.core.errors import StoreUnavailable
from app.db.store import Store, WriteTurns
from tests.faults.deadlines import RECOVERY_DEADLINE, eventually, within

# Long enough that no writer of these stories runs out of it, but the one meant to.
PATIENT_SECONDS = 30.0
BOUND_SECONDS = 0.5
ISSUES = "/api/v1/maintenance/issues"
# A write that changes nothing: enough to take the turn and SQLite's write lock.
TOUCH = text("UPDATE users SET is_active = is_active WHERE id = -1")


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def bound_seconds() -> float:
    return PATIENT_SECONDS


@pytest.fixture
def settings(settings: Settings, bound_seconds: float) -> Settings:
    return settings.model_copy(update={"database_timeout_seconds": bound_seconds})


@pytest.fixture
async def known_caller(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    """The admin's token already resolved: its first use writes when it was last used,
    which would wait for the turn in place of the write a story is about."""
    assert (await client.get("/api/v1/users/me", headers=admin_headers)).status_code == 200


def turns_of(app: FastAPI) -> WriteTurns:
    store: Store = app.state.store
    assert store.write_turns is not None
    return store.write_turns


def report(
    client: httpx.AsyncClient, headers: dict[str, str], title: str
) -> asyncio.Task[httpx.Response]:
    body = {"title": title, "issue_type": "bug"}
    request = client.post(ISSUES, json=body, headers=headers)
    return asyncio.create_task(within(RECOVERY_DEADLINE, request, f"reporting {title!r}"))


@pytest.mark.usefixtures("known_caller")
async def test_writers_wait_for_the_turn_and_go_in_the_order_they_came(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    turns = turns_of(app)
    titles = [f"report number {n}" for n in range(4)]
    reports: list[asyncio.Task[httpx.Response]] = []

    def each_report_waiting() -> bool:
        return turns.waiting == len(reports)

    async with app.state.store.unit_of_work() as session:
        await session.execute(TOUCH)  # this transaction holds the turn until it commits
        for title in titles:
            reports.append(report(client, admin_headers, title))
            await eventually(each_report_waiting, f"{len(reports)} writers waiting")
    answers = await asyncio.gather(*reports)

    assert [answer.status_code for answer in answers] == [201] * len(titles)
    by_id = sorted(answers, key=lambda answer: answer.json()["id"])
    assert [answer.json()["title"] for answer in by_id] == titles
    assert turns.waiting == 0


@pytest.mark.usefixtures("known_caller")
@pytest.mark.parametrize("bound_seconds", [BOUND_SECONDS])
async def test_a_writer_kept_waiting_past_the_bound_gets_503_naming_the_lock(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with app.state.store.unit_of_work() as session:
        await session.execute(TOUCH)
        blocked = await report(client, admin_headers, "the export button does nothing")
    released = await report(client, admin_headers, "the export button does nothing")

    assert blocked.status_code == 503
    assert blocked.json() == {"detail": StoreUnavailable().detail}
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("database is locked: no write turn" in line for line in logged), logged
    assert released.status_code == 201


@pytest.mark.usefixtures("known_caller")
@pytest.mark.parametrize("bound_seconds", [BOUND_SECONDS])
@pytest.mark.parametrize("ending", ["rollback", "failed statement", "closed session"])
async def test_every_way_a_transaction_ends_gives_the_turn_back(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], ending: str
) -> None:
    store: Store = app.state.store
    session = store.sessions()
    await session.execute(TOUCH)
    if ending == "rollback":
        await session.rollback()
    elif ending == "failed statement":
        with pytest.raises(Exception, match="no such table"):
            await session.execute(text("INSERT INTO no_such_table VALUES (1)"))
        await session.rollback()
    await session.close()

    # Held still, the turn would keep this writer waiting out the bound: a 503.
    after = await report(client, admin_headers, "the export button does nothing")

    assert after.status_code == 201, after.text
