"""Maintenance windows mean what they say: no window that is over before it is made, no
window for a component nobody watches, and ending one never moves its end past itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from app.vocabulary.accounts import Role
from tests.conftest import Account, MakeAccount

WINDOWS = "/api/v1/maintenance/maintenance-windows"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def dev(make_account: MakeAccount, app: FastAPI) -> Account:
    app.state.clock = lambda: NOW
    return await make_account("dev", Role.DEVELOPER)


def one_off(start: timedelta, end: timedelta, **fields: object) -> dict[str, object]:
    return {
        "name": "deploy",
        "starts_at": (NOW + start).isoformat(),
        "ends_at": (NOW + end).isoformat(),
        **fields,
    }


class TestOpening:
    async def test_a_window_that_ended_before_it_was_made_is_refused(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.post(
            WINDOWS, json=one_off(timedelta(hours=-2), timedelta(hours=-1)), headers=dev.headers
        )

        assert response.status_code == 422
        assert "ends_at" in response.json()["detail"]

    async def test_a_window_for_a_component_nobody_watches_is_refused_naming_the_known(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        body = one_off(timedelta(0), timedelta(hours=1), components=["stroe"])

        response = await client.post(WINDOWS, json=body, headers=dev.headers)

        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "stroe" in detail
        assert "store" in detail and "system" in detail

    async def test_a_window_for_watched_components_is_opened(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        body = one_off(timedelta(0), timedelta(hours=1), components=["store", "system"])

        response = await client.post(WINDOWS, json=body, headers=dev.headers)

        assert response.status_code == 201
        assert response.json()["components"] == ["store", "system"]


class TestEnding:
    async def test_ending_an_open_window_ends_it_now(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        opened = await client.post(
            WINDOWS, json=one_off(timedelta(hours=-1), timedelta(hours=1)), headers=dev.headers
        )

        ended = await client.post(f"{WINDOWS}/{opened.json()['id']}/end", headers=dev.headers)

        assert ended.status_code == 200
        window = ended.json()
        assert window["active"] is False
        assert datetime.fromisoformat(window["ended_at"]) <= datetime.fromisoformat(
            window["ends_at"]
        )

    async def test_a_window_past_its_end_cannot_be_ended_again(
        self, client: httpx.AsyncClient, dev: Account, app: FastAPI
    ) -> None:
        opened = await client.post(
            WINDOWS, json=one_off(timedelta(0), timedelta(minutes=30)), headers=dev.headers
        )
        app.state.clock = lambda: NOW + timedelta(hours=1)

        ended = await client.post(f"{WINDOWS}/{opened.json()['id']}/end", headers=dev.headers)

        assert ended.status_code == 409
        listed = await client.get(WINDOWS, headers=dev.headers)
        assert [w["ended_at"] for w in listed.json()] == [None]
