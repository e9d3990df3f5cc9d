"""Managing users: only admins create users and tokens; bad input is a clear 422."""

from __future__ import annotations

import httpx
import pytest

from app.vocabulary.accounts import Role
from tests.conftest import MakeAccount


class TestMe:
    async def test_bootstrap_admin_sees_itself(self, client: httpx.AsyncClient, admin_headers):
        me = await client.get("/api/v1/users/me", headers=admin_headers)

        assert me.status_code == 200
        assert me.json()["username"] == "admin"
        assert me.json()["role"] == "admin"


class TestCreateUser:
    async def test_admin_creates_a_developer(self, client: httpx.AsyncClient, admin_headers):
        created = await client.post(
            "/api/v1/users",
            json={"username": "dana", "password": "s3cret-pass", "role": "developer"},
            headers=admin_headers,
        )

        assert created.status_code == 201
        assert created.json()["role"] == "developer"
        assert "password" not in created.text
        listed = await client.get("/api/v1/users", headers=admin_headers)
        assert [u["username"] for u in listed.json()] == ["admin", "dana"]

    async def test_taken_username_is_a_conflict(self, client: httpx.AsyncClient, admin_headers):
        body = {"username": "dana", "role": "user"}
        await client.post("/api/v1/users", json=body, headers=admin_headers)

        again = await client.post("/api/v1/users", json=body, headers=admin_headers)

        assert again.status_code == 409
        assert "dana" in again.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"username": "dana", "role": "wizard"}, "role"),
            ({"username": "dana", "shoe_size": 42}, "shoe_size"),
            ({"username": "d"}, "username"),
            ({"username": "dana", "password": "short"}, "password"),
            ({"username": 42}, "username"),
            ({"username": "dana", "email": "not-an-address"}, "email"),
        ],
        ids=[
            "unknown-role",
            "unknown-field",
            "short-name",
            "short-password",
            "wrong-type",
            "email",
        ],
    )
    async def test_bad_input_names_the_field(
        self, client: httpx.AsyncClient, admin_headers, body: dict[str, object], field: str
    ) -> None:
        response = await client.post("/api/v1/users", json=body, headers=admin_headers)

        assert response.status_code == 422
        assert any(error["loc"][-1] == field for error in response.json()["detail"])
        listed = await client.get("/api/v1/users", headers=admin_headers)
        assert len(listed.json()) == 1

    async def test_token_for_unknown_user_is_not_found(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        issued = await client.post(
            "/api/v1/users/ghost/tokens", json={"name": "x"}, headers=admin_headers
        )

        assert issued.status_code == 404


class TestRoles:
    @pytest.mark.parametrize("role", [Role.USER, Role.DEVELOPER])
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/v1/users"),
            ("POST", "/api/v1/users"),
            ("GET", "/api/v1/users/admin/tokens"),
            ("POST", "/api/v1/users/admin/tokens"),
        ],
    )
    async def test_non_admins_cannot_reach_admin_endpoints(
        self, client: httpx.AsyncClient, make_account: MakeAccount, role: Role, method, path
    ) -> None:
        someone = await make_account("someone", role)
        body = (
            {"username": "mallory", "role": "admin"} if path == "/api/v1/users" else {"name": "x"}
        )

        response = await client.request(
            method, path, json=body if method == "POST" else None, headers=someone.headers
        )

        assert response.status_code == 403
        assert response.json() == {"detail": "This needs the admin role"}
