"""Rotating WATCHKEEPER_ADMIN_TOKEN: after a restart the new token works, the old one not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.conftest import bearer

ME = "/api/v1/users/me"
TOKEN_A = "wk_rotation-token-a-0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_B = "wk_rotation-token-b-0123456789abcdefghijklmnopqrstuvwxyz"


@asynccontextmanager
async def started(settings: Settings, admin_token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """Watchkeeper started on the test's store with this WATCHKEEPER_ADMIN_TOKEN."""
    configured = settings.model_copy(
        update={"admin_token": SecretStr(admin_token) if admin_token else None}
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://wk") as client:
            yield client


async def status_of(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get(ME, headers=bearer(token))).status_code


async def admin_tokens(client: httpx.AsyncClient, token: str) -> list[tuple[int, str, object]]:
    """The admin's tokens as (id, name, revoked_at)."""
    listed = await client.get("/api/v1/users/admin/tokens", headers=bearer(token))
    return [(t["id"], t["name"], t["revoked_at"]) for t in listed.json()]


class TestRotation:
    async def test_new_token_works_and_the_old_one_is_refused(self, settings: Settings) -> None:
        async with started(settings, TOKEN_A) as first:
            assert await status_of(first, TOKEN_A) == 200

        async with started(settings, TOKEN_B) as second:
            assert await status_of(second, TOKEN_B) == 200
            assert await status_of(second, TOKEN_A) == 401

    async def test_a_hand_made_admin_token_survives(self, settings: Settings) -> None:
        async with started(settings, TOKEN_A) as first:
            issued = await first.post(
                "/api/v1/users/admin/tokens", json={"name": "laptop"}, headers=bearer(TOKEN_A)
            )
            hand_made = issued.json()["token"]

        async with started(settings, TOKEN_B) as second:
            assert await status_of(second, hand_made) == 200
            assert await status_of(second, TOKEN_A) == 401

    async def test_the_same_token_again_changes_nothing(self, settings: Settings) -> None:
        async with started(settings, TOKEN_A) as first:
            before = await admin_tokens(first, TOKEN_A)

        async with started(settings, TOKEN_A) as second:
            after = await admin_tokens(second, TOKEN_A)

        assert len(before) == 1
        assert before[0][2] is None
        assert after == before

    async def test_a_generated_first_token_is_replaced_by_a_configured_one(
        self, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        async with started(settings, None):
            announced = capsys.readouterr().out
        generated = next(w for w in announced.split() if w.startswith("wk_"))

        async with started(settings, TOKEN_B) as second:
            assert await status_of(second, TOKEN_B) == 200
            assert await status_of(second, generated) == 401

    async def test_a_revoked_configured_token_stays_revoked_and_replaces_nothing(
        self, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        async with started(settings, TOKEN_A):
            pass
        async with started(settings, TOKEN_B):
            pass

        async with started(settings, TOKEN_A) as back:
            assert await status_of(back, TOKEN_A) == 401
            assert await status_of(back, TOKEN_B) == 200
        assert "WATCHKEEPER_ADMIN_TOKEN is a revoked token" in capsys.readouterr().err
