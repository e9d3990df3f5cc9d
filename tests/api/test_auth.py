"""Signing in and proving who you are: password login, bearer tokens, expiry, revocation."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from app.db.base import utcnow
from app.db.models import ApiToken
from app.vocabulary.accounts import Role
from tests.conftest import MakeAccount, bearer

ME = "/api/v1/users/me"


def assert_rejected(response: httpx.Response) -> None:
    """A 401 that asks for a bearer token and says nothing about what was wrong."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Not authenticated"}


class TestPasswordLogin:
    async def test_user_exchanges_password_for_a_short_lived_token(
        self, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        await make_account("dana", Role.DEVELOPER, password="correct horse")

        login = await client.post(
            "/api/v1/auth/token", data={"username": "dana", "password": "correct horse"}
        )

        assert login.status_code == 200
        body = login.json()
        assert body["token_type"] == "bearer"
        me = await client.get(ME, headers=bearer(body["access_token"]))
        assert me.json()["username"] == "dana"
        assert me.json()["role"] == "developer"

    @pytest.mark.parametrize(
        ("username", "password"),
        [("dana", "wrong password"), ("nobody", "correct horse"), ("dana", "")],
        ids=["wrong-password", "unknown-user", "empty-password"],
    )
    async def test_bad_credentials_get_one_vague_answer(
        self, client: httpx.AsyncClient, make_account: MakeAccount, username: str, password: str
    ) -> None:
        await make_account("dana", Role.USER, password="correct horse")

        login = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )

        assert login.status_code in (401, 422)
        if login.status_code == 401:
            assert login.headers["www-authenticate"] == "Bearer"
            assert login.json() == {"detail": "Incorrect username or password"}

    async def test_account_without_password_cannot_log_in_with_one(
        self, client: httpx.AsyncClient
    ) -> None:
        login = await client.post("/api/v1/auth/token", data={"username": "admin", "password": "x"})

        assert login.status_code == 401


class TestBearerTokens:
    async def test_request_without_authorization_is_rejected(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_rejected(await client.get(ME))

    @pytest.mark.parametrize(
        "header",
        ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer wk_unknown", "Token abc", "Bearer a b"],
    )
    async def test_malformed_or_unknown_credentials_are_rejected(
        self, client: httpx.AsyncClient, header: str
    ) -> None:
        assert_rejected(await client.get(ME, headers={"Authorization": header}))

    async def test_expired_token_is_rejected(
        self, client: httpx.AsyncClient, make_account: MakeAccount, app
    ) -> None:
        erin = await make_account("erin", Role.USER)
        async with app.state.store.unit_of_work() as session:
            await session.execute(
                update(ApiToken)
                .where(ApiToken.hint == erin.token[:9])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )

        assert_rejected(await client.get(ME, headers=erin.headers))

    async def test_token_created_with_expiry_reports_it(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        await make_account("erin", Role.USER)

        issued = await client.post(
            "/api/v1/users/erin/tokens",
            json={"name": "ci", "expires_in_days": 7},
            headers=admin_headers,
        )

        assert issued.status_code == 201
        assert issued.json()["expires_at"] is not None
        assert issued.json()["kind"] == "api"

    async def test_revoked_token_stops_working_at_once(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        erin = await make_account("erin", Role.USER)
        tokens = (await client.get("/api/v1/users/erin/tokens", headers=admin_headers)).json()

        revoked = await client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=admin_headers)

        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert_rejected(await client.get(ME, headers=erin.headers))

    async def test_user_can_revoke_own_token_but_not_anothers(
        self, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        erin = await make_account("erin", Role.USER)
        finn = await make_account("finn", Role.USER)
        erins = (await client.get("/api/v1/users/me/tokens", headers=erin.headers)).json()

        by_finn = await client.delete(f"/api/v1/tokens/{erins[0]['id']}", headers=finn.headers)
        by_erin = await client.delete(f"/api/v1/tokens/{erins[0]['id']}", headers=erin.headers)

        assert by_finn.status_code == 404
        assert by_erin.status_code == 200

    async def test_listing_tokens_never_shows_the_secret(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        erin = await make_account("erin", Role.USER)

        listed = await client.get("/api/v1/users/erin/tokens", headers=admin_headers)

        assert erin.token not in listed.text
        assert listed.json()[0]["hint"] == erin.token[:9]
