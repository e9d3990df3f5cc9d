"""The token cache: a hot token costs no store query, yet a revoked token, a deactivated or
demoted user and an expired token are refused at once on the process that made the change,
and within a second on a replica sharing the store (read off an injected clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.core.config import Settings
from app.db.base import utcnow
from app.services.accounts import TOKEN_CACHE_SECONDS, TokenCache
from app.vocabulary.accounts import Role
from tests.api.otlp_exporters import TRACES, TracedService, ingest_token, post_export, running
from tests.conftest import Account, MakeAccount

ME = "/api/v1/users/me"
USERS = "/api/v1/users"  # admins only
PROMISE = 1.0  # seconds within which a replica refuses what another process revoked


@dataclass
class Clock:
    """The replica's clocks, moved by the test: monotonic seconds and UTC now."""

    seconds: float = 0.0
    wall: datetime = field(default_factory=utcnow)

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall


@dataclass
class Replica:
    """A second Watchkeeper process on the same store, its token cache on a test clock."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock


@pytest.fixture
async def replica(settings: Settings) -> AsyncIterator[Replica]:
    clock = Clock()
    async with running(settings) as (application, client):
        application.state.token_cache = TokenCache(monotonic=clock.monotonic, now=clock.now)
        yield Replica(application, client, clock)


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements ``app`` sends to its store inside the block."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    engine = app.state.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def token_id(client: httpx.AsyncClient, account: Account, admin: dict[str, str]) -> int:
    [token] = (await client.get(f"/api/v1/users/{account.username}/tokens", headers=admin)).json()
    return int(token["id"])


class TestHotTokens:
    async def test_a_token_in_use_costs_no_store_query(
        self, app: FastAPI, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        dana = await make_account("dana")
        assert (await client.get(ME, headers=dana.headers)).status_code == 200

        with statements(app) as sent:
            answers = [await client.get(ME, headers=dana.headers) for _ in range(20)]

        assert {answer.status_code for answer in answers} == {200}
        assert {answer.json()["username"] for answer in answers} == {"dana"}
        assert sent == []

    async def test_sixteen_requests_at_once_with_a_new_token_share_one_look_up(
        self, app: FastAPI, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        dana = await make_account("dana")

        with statements(app) as sent:
            answers = await asyncio.gather(
                *(client.get(ME, headers=dana.headers) for _ in range(16))
            )

        assert {answer.status_code for answer in answers} == {200}
        assert len([s for s in sent if s.lstrip().upper().startswith("SELECT")]) == 1

    async def test_the_last_use_is_recorded_but_not_per_request(
        self, replica: Replica, make_account: MakeAccount, admin_headers: dict[str, str]
    ) -> None:
        dana = await make_account("dana")
        with statements(replica.app) as sent:
            for _ in range(3):
                assert (await replica.client.get(ME, headers=dana.headers)).status_code == 200
                replica.clock.seconds += TOKEN_CACHE_SECONDS  # each use looks the token up

        writes = [s for s in sent if s.lstrip().upper().startswith("UPDATE")]
        assert len(writes) == 1
        [token] = (await replica.client.get(f"{USERS}/dana/tokens", headers=admin_headers)).json()
        assert token["last_used_at"] is not None

    async def test_memory_is_bounded_the_least_recently_used_token_goes_first(
        self, app: FastAPI, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        ann, bob, cat = [await make_account(name) for name in ("ann", "bob", "cat")]
        app.state.token_cache = TokenCache(max_entries=2)
        for account in (ann, bob, ann, cat):  # cat pushes out bob, used least recently
            assert (await client.get(ME, headers=account.headers)).status_code == 200

        with statements(app) as sent:
            await client.get(ME, headers=ann.headers)
        assert sent == []
        with statements(app) as sent:
            await client.get(ME, headers=bob.headers)
        assert sent != []


class TestOnTheProcessThatRevokes:
    async def test_a_revoked_token_is_refused_by_the_very_next_request(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers: dict[str, str]
    ) -> None:
        dana = await make_account("dana")
        assert (await client.get(ME, headers=dana.headers)).status_code == 200

        revoked = await client.delete(
            f"/api/v1/tokens/{await token_id(client, dana, admin_headers)}", headers=admin_headers
        )

        assert revoked.status_code == 200
        assert (await client.get(ME, headers=dana.headers)).status_code == 401

    async def test_a_deactivated_users_token_is_refused_by_the_very_next_request(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers: dict[str, str]
    ) -> None:
        dana = await make_account("dana")
        assert (await client.get(ME, headers=dana.headers)).status_code == 200

        await client.patch(f"{USERS}/dana", json={"is_active": False}, headers=admin_headers)

        assert (await client.get(ME, headers=dana.headers)).status_code == 401

    async def test_a_demoted_admin_loses_admin_routes_at_once(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers: dict[str, str]
    ) -> None:
        ops = await make_account("ops", Role.ADMIN)
        assert (await client.get(USERS, headers=ops.headers)).status_code == 200

        await client.patch(f"{USERS}/ops", json={"role": "developer"}, headers=admin_headers)

        assert (await client.get(USERS, headers=ops.headers)).status_code == 403
        assert (await client.get(ME, headers=ops.headers)).json()["role"] == "developer"

    async def test_other_users_tokens_stay_cached(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        make_account: MakeAccount,
        admin_headers: dict[str, str],
    ) -> None:
        dana, erin = await make_account("dana"), await make_account("erin")
        for account in (dana, erin):
            assert (await client.get(ME, headers=account.headers)).status_code == 200

        await client.delete(
            f"/api/v1/tokens/{await token_id(client, dana, admin_headers)}", headers=admin_headers
        )

        with statements(app) as sent:
            assert (await client.get(ME, headers=erin.headers)).status_code == 200
        assert sent == []


class TestOnAReplica:
    async def test_a_token_revoked_elsewhere_is_refused_within_a_second(
        self,
        client: httpx.AsyncClient,
        replica: Replica,
        make_account: MakeAccount,
        admin_headers: dict[str, str],
    ) -> None:
        dana = await make_account("dana")
        assert (await replica.client.get(ME, headers=dana.headers)).status_code == 200

        await client.delete(
            f"/api/v1/tokens/{await token_id(client, dana, admin_headers)}", headers=admin_headers
        )
        replica.clock.seconds += PROMISE

        assert (await replica.client.get(ME, headers=dana.headers)).status_code == 401

    async def test_a_user_deactivated_elsewhere_is_refused_within_a_second(
        self,
        client: httpx.AsyncClient,
        replica: Replica,
        make_account: MakeAccount,
        admin_headers: dict[str, str],
    ) -> None:
        dana = await make_account("dana")
        assert (await replica.client.get(ME, headers=dana.headers)).status_code == 200

        await client.patch(f"{USERS}/dana", json={"is_active": False}, headers=admin_headers)
        replica.clock.seconds += PROMISE

        assert (await replica.client.get(ME, headers=dana.headers)).status_code == 401

    async def test_an_ingest_token_revoked_elsewhere_stops_posting_within_a_second(
        self, client: httpx.AsyncClient, replica: Replica, admin_headers: dict[str, str]
    ) -> None:
        shop = TracedService("shop")
        headers = await ingest_token(client, admin_headers)
        shop.serve("/orders", duration_ms=12.0)
        posted = await post_export(replica.client, TRACES, shop.export(), headers)
        assert posted.status_code == 200, posted.text
        [token] = (await client.get(f"{USERS}/exporter/tokens", headers=admin_headers)).json()

        await client.delete(f"/api/v1/tokens/{token['id']}", headers=admin_headers)
        replica.clock.seconds += PROMISE

        shop.serve("/orders", duration_ms=12.0)
        refused = await post_export(replica.client, TRACES, shop.export(), headers)
        assert refused.status_code == 401

    async def test_a_cached_token_is_refused_the_moment_it_expires(
        self, replica: Replica, make_account: MakeAccount, admin_headers: dict[str, str]
    ) -> None:
        await make_account("dana")
        issued = await replica.client.post(
            f"{USERS}/dana/tokens", json={"name": "ci", "expires_in_days": 1}, headers=admin_headers
        )
        headers = {"Authorization": f"Bearer {issued.json()['token']}"}
        assert (await replica.client.get(ME, headers=headers)).status_code == 200

        replica.clock.wall += timedelta(days=1, minutes=1)  # the entry itself is still fresh

        assert (await replica.client.get(ME, headers=headers)).status_code == 401

    async def test_a_token_issued_elsewhere_works_at_once(
        self, replica: Replica, make_account: MakeAccount
    ) -> None:
        dana = await make_account("dana")  # issued by the other process

        assert (await replica.client.get(ME, headers=dana.headers)).status_code == 200
