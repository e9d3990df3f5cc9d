"""A store that hangs, is cut off or restarts, as the API's callers see it.

The service reaches PostgreSQL through ``StoreProxy`` under a store bound of
``BOUND_SECONDS``. Frozen, or turning connections away (starting up, shutting down, out of
slots), every request answers 503 with the JSON body within its deadline and ``/readyz``
says 503 within its 2 s; a cut the pool can ride out goes unseen. When the store is back
the service recovers by itself, without a restart, and every write it acknowledged with a
201 is in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.config import Settings
from app.core.errors import StoreUnavailable
from app.db.models import Issue
from app.db.store import Store
from tests.faults.deadlines import (
    ANSWER_DEADLINE,
    BOUND_SECONDS,
    READY_DEADLINE,
    RECOVERY_DEADLINE,
    within,
)
from tests.faults.proxy import StoreProxy

UNAVAILABLE = {"detail": StoreUnavailable().detail}


@pytest.fixture
def backend() -> str:
    """The proxy stands in front of PostgreSQL: these stories run on PostgreSQL only."""
    return "postgresql"


@pytest.fixture
def settings(settings: Settings, proxy: StoreProxy) -> Settings:
    """The test's settings, the store reached through the proxy under a small bound."""
    return settings.model_copy(
        update={
            "database_url": proxy.url_through(settings.database_url),
            "database_timeout_seconds": BOUND_SECONDS,
        }
    )


async def report(client: httpx.AsyncClient, headers: dict[str, str], title: str) -> httpx.Response:
    """Reports an issue through the API, held to the answer deadline."""
    body = {"title": title, "issue_type": "bug"}
    request = client.post("/api/v1/maintenance/issues", json=body, headers=headers)
    return await within(ANSWER_DEADLINE, request, f"reporting {title!r}")


async def recovered(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Returns once the API answers again, as a client that retries would find."""

    async def retry() -> None:
        while True:
            if (await client.get("/api/v1/users/me", headers=headers)).status_code == 200:
                return
            await asyncio.sleep(0.1)

    await within(RECOVERY_DEADLINE, retry(), "recovering after the store came back")


async def stored_titles(store_url: str) -> set[str]:
    """The titles of the issues in the store itself, read past the proxy."""
    store = Store(store_url)
    try:
        async with store.sessions() as session:
            return set(await session.scalars(select(Issue.title)))
    finally:
        await store.dispose()


@dataclass
class Writers:
    """Clients reporting issues one after another, counting what each answer was."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    acknowledged: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _answered: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def write(self) -> None:
        while True:
            title = f"reported under load #{next(self._numbers)}"
            response = await report(self.client, self.headers, title)
            async with self._answered:
                self.statuses.append(response.status_code)
                if response.status_code == 201:
                    self.acknowledged.append(title)
                self._answered.notify_all()
            if response.status_code != 201:
                await asyncio.sleep(0.05)  # a client backing off a 503

    async def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Returns once the answers so far meet ``condition``."""
        async with self._answered:
            await within(RECOVERY_DEADLINE, self._answered.wait_for(condition), what)


@contextlib.asynccontextmanager
async def writing(
    client: httpx.AsyncClient, headers: dict[str, str], *, clients: int = 3
) -> AsyncIterator[Writers]:
    writers = Writers(client, headers)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(writers.write()) for _ in range(clients)]
        try:
            yield writers
        finally:
            for task in tasks:
                task.cancel()


class TestFrozenStore:
    async def test_requests_answer_503_within_the_bound(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str], proxy: StoreProxy
    ) -> None:
        proxy.freeze()

        me = await within(
            ANSWER_DEADLINE, client.get("/api/v1/users/me", headers=admin_headers), "users/me"
        )
        reported = await report(client, admin_headers, "written while the store hangs")

        for response in (me, reported):
            assert response.status_code == 503
            assert response.json() == UNAVAILABLE

    async def test_readiness_says_503_within_2_seconds_however_patient_the_store(
        self, client: httpx.AsyncClient, app: FastAPI, proxy: StoreProxy, store_url: str
    ) -> None:
        patient = Store(proxy.url_through(store_url), timeout=60.0)
        app.state.store = patient
        await patient.ping()  # a pooled connection, which then hangs
        proxy.freeze()

        ready = await within(READY_DEADLINE, client.get("/readyz"), "/readyz")

        await proxy.cut()  # ends the check still waiting on the store
        await patient.dispose()
        assert ready.status_code == 503
        assert ready.json()["detail"] == "The store does not answer"

    async def test_the_service_recovers_by_itself_keeping_every_acknowledged_write(
        self,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
        proxy: StoreProxy,
        store_url: str,
    ) -> None:
        async with writing(client, admin_headers) as writers:
            await writers.until("writes before the freeze", lambda: len(writers.acknowledged) >= 5)
            proxy.freeze()
            refused = writers.statuses.count(503)
            await writers.until(
                "503s while frozen", lambda: writers.statuses.count(503) >= refused + 3
            )
            proxy.thaw()
            thawed = len(writers.acknowledged)
            await writers.until(
                "writes after the thaw", lambda: len(writers.acknowledged) >= thawed + 5
            )

        assert set(writers.statuses) == {201, 503}
        assert set(writers.acknowledged) <= await stored_titles(store_url)
        assert (await client.get("/readyz")).status_code == 200


class TestStoreRestart:
    async def test_connections_cut_under_an_idle_pool_are_replaced_unseen(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str], proxy: StoreProxy
    ) -> None:
        assert (await report(client, admin_headers, "before the cut")).status_code == 201

        await proxy.cut()

        assert (await report(client, admin_headers, "after the cut")).status_code == 201

    @pytest.mark.parametrize(
        ("sqlstate", "message"),
        [
            ("57P03", "the database system is starting up"),
            ("57P03", "the database system is shutting down"),
            ("53300", "sorry, too many clients already"),
            ("57P01", "terminating connection due to administrator command"),
        ],
    )
    async def test_while_the_store_turns_connections_away_requests_get_503_then_it_recovers(
        self,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
        proxy: StoreProxy,
        store_url: str,
        caplog: pytest.LogCaptureFixture,
        sqlstate: str,
        message: str,
    ) -> None:
        assert (await report(client, admin_headers, "before the restart")).status_code == 201

        proxy.refuse(sqlstate, message)
        await proxy.cut()  # the pooled connections went with the old server
        during = await report(client, admin_headers, "while turned away")
        ready = await within(READY_DEADLINE, client.get("/readyz"), "/readyz")
        proxy.thaw()
        await recovered(client, admin_headers)
        after = await report(client, admin_headers, "after the restart")

        assert during.status_code == 503
        assert during.json() == UNAVAILABLE
        assert ready.status_code == 503
        assert after.status_code == 201
        assert {"before the restart", "after the restart"} <= await stored_titles(store_url)
        logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(message in line for line in logged), logged
