"""Deactivating a user: every token and session stops at once, and admins cannot lock out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import main
from app.core.config import Settings, get_settings
from app.vocabulary.accounts import Role
from tests.conftest import MakeAccount, bearer

ME = "/api/v1/users/me"
PASSWORD = "correct horse battery"


async def login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    """A password login as ``username``."""
    return await client.post(
        "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )


async def patch_user(
    client: httpx.AsyncClient, username: str, body: dict[str, object], headers: dict[str, str]
) -> httpx.Response:
    return await client.patch(f"/api/v1/users/{username}", json=body, headers=headers)


async def user_as_admin_sees_it(
    client: httpx.AsyncClient, username: str, admin_headers: dict[str, str]
) -> dict[str, object]:
    """The user's entry in the admin's list of users."""
    listed = await client.get("/api/v1/users", headers=admin_headers)
    found: dict[str, object] = next(u for u in listed.json() if u["username"] == username)
    return found


class TestDeactivate:
    async def test_api_token_session_and_password_stop_at_once(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        dana = await make_account("dana", Role.DEVELOPER, password=PASSWORD)
        session_token = (await login(client, "dana")).json()["access_token"]

        changed = await patch_user(client, "dana", {"is_active": False}, admin_headers)

        assert changed.status_code == 200, changed.text
        assert changed.json()["is_active"] is False
        assert changed.json()["role"] == "developer"
        assert (await client.get(ME, headers=dana.headers)).status_code == 401
        assert (await client.get(ME, headers=bearer(session_token))).status_code == 401
        assert (await login(client, "dana")).status_code == 401
        tokens = await client.get("/api/v1/users/dana/tokens", headers=admin_headers)
        assert len(tokens.json()) == 2
        assert all(t["revoked_at"] is not None for t in tokens.json())

    async def test_a_deactivated_user_gets_no_new_token(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        await make_account("dana", Role.USER)
        await patch_user(client, "dana", {"is_active": False}, admin_headers)

        issued = await client.post(
            "/api/v1/users/dana/tokens", json={"name": "sneaky"}, headers=admin_headers
        )

        assert issued.status_code == 409
        assert "deactivated" in issued.json()["detail"]

    async def test_other_users_keep_working(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        dana = await make_account("dana", Role.USER)
        erin = await make_account("erin", Role.USER)

        await patch_user(client, "dana", {"is_active": False}, admin_headers)

        assert (await client.get(ME, headers=erin.headers)).status_code == 200
        assert (await client.get(ME, headers=dana.headers)).status_code == 401


class TestReactivate:
    async def test_password_works_again_but_old_tokens_stay_revoked(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        dana = await make_account("dana", Role.USER, password=PASSWORD)
        old_session = (await login(client, "dana")).json()["access_token"]
        await patch_user(client, "dana", {"is_active": False}, admin_headers)

        changed = await patch_user(client, "dana", {"is_active": True}, admin_headers)

        assert changed.status_code == 200
        assert changed.json()["is_active"] is True
        assert (await client.get(ME, headers=dana.headers)).status_code == 401
        assert (await client.get(ME, headers=bearer(old_session))).status_code == 401
        fresh = await login(client, "dana")
        assert fresh.status_code == 200
        me = await client.get(ME, headers=bearer(fresh.json()["access_token"]))
        assert me.json()["username"] == "dana"


class TestGuards:
    async def test_admin_cannot_deactivate_or_demote_themselves(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        deactivated = await patch_user(client, "admin", {"is_active": False}, admin_headers)
        demoted = await patch_user(client, "admin", {"role": "developer"}, admin_headers)

        assert deactivated.status_code == 409
        assert demoted.status_code == 409
        me = await client.get(ME, headers=admin_headers)
        assert me.json()["role"] == "admin"
        assert me.json()["is_active"] is True

    async def test_the_last_admin_standing_cannot_leave(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        root = await make_account("root", Role.ADMIN)
        demoted = await patch_user(client, "admin", {"role": "developer"}, root.headers)

        last = await patch_user(client, "root", {"is_active": False}, root.headers)

        assert demoted.status_code == 200
        assert demoted.json()["role"] == "developer"
        assert (await client.get("/api/v1/users", headers=admin_headers)).status_code == 403
        assert last.status_code == 409
        assert (await client.get(ME, headers=root.headers)).json()["is_active"] is True

    async def test_a_non_admin_is_forbidden(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        dana = await make_account("dana", Role.DEVELOPER)
        await make_account("erin", Role.USER)

        refused = await patch_user(client, "erin", {"is_active": False}, dana.headers)

        assert refused.status_code == 403
        assert (await user_as_admin_sees_it(client, "erin", admin_headers))["is_active"] is True

    async def test_only_the_fields_sent_change(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        dana = await make_account("dana", Role.USER)

        promoted = await patch_user(client, "dana", {"role": "developer"}, admin_headers)

        assert promoted.json()["role"] == "developer"
        assert promoted.json()["is_active"] is True
        assert (await client.get(ME, headers=dana.headers)).status_code == 200

    async def test_unknown_user_is_not_found(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        response = await patch_user(client, "ghost", {"is_active": False}, admin_headers)

        assert response.status_code == 404

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"is_active": False, "password": "x"}, "password"), ({"role": "wizard"}, "role")],
        ids=["unknown-field", "unknown-role"],
    )
    async def test_bad_input_names_the_field(
        self,
        client: httpx.AsyncClient,
        make_account: MakeAccount,
        admin_headers,
        body: dict[str, object],
        field: str,
    ) -> None:
        await make_account("dana", Role.USER)

        response = await patch_user(client, "dana", body, admin_headers)

        assert response.status_code == 422
        assert any(error["loc"][-1] == field for error in response.json()["detail"])
        assert (await user_as_admin_sees_it(client, "dana", admin_headers))["is_active"] is True

    @pytest.mark.parametrize("method", ["PATCH", "GET", "POST"])
    async def test_an_overlong_username_in_the_path_is_refused(
        self, client: httpx.AsyncClient, admin_headers, method: str
    ) -> None:
        path = "/api/v1/users/" + "a" * 65 + ("" if method == "PATCH" else "/tokens")
        body = {"is_active": False} if method == "PATCH" else {"name": "x"}

        response = await client.request(
            method, path, json=None if method == "GET" else body, headers=admin_headers
        )

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "username"]


runner = CliRunner()


@pytest.fixture
def cli_store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Points the CLI at the test's store, as an operator's environment would."""
    monkeypatch.setenv("WATCHKEEPER_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def cli(*arguments: str) -> tuple[int, str]:
    """Runs ``watchkeeper ARGUMENTS`` (in a thread: it runs its own event loop)."""
    result = await asyncio.to_thread(runner.invoke, main, list(arguments))
    return result.exit_code, result.output


@pytest.mark.usefixtures("cli_store")
class TestCommandLine:
    async def test_operator_deactivates_and_reactivates_a_user(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers
    ) -> None:
        dana = await make_account("dana", Role.DEVELOPER, password=PASSWORD)

        code, output = await cli("users", "deactivate", "dana")

        assert code == 0, output
        assert output.strip() == "Deactivated 'dana' and revoked their tokens."
        assert (await user_as_admin_sees_it(client, "dana", admin_headers))["is_active"] is False
        assert (await client.get(ME, headers=dana.headers)).status_code == 401
        assert (await login(client, "dana")).status_code == 401

        code, output = await cli("users", "activate", "dana")

        assert code == 0, output
        assert output.strip() == "Activated 'dana'."
        assert (await user_as_admin_sees_it(client, "dana", admin_headers))["is_active"] is True
        assert (await login(client, "dana")).status_code == 200
        assert (await client.get(ME, headers=dana.headers)).status_code == 401

    async def test_the_last_active_admin_is_kept(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        code, output = await cli("users", "deactivate", "admin")

        assert code == 1
        assert "last active admin" in output
        assert (await client.get(ME, headers=admin_headers)).status_code == 200

    async def test_unknown_user_is_one_line_error(self) -> None:
        code, output = await cli("users", "deactivate", "ghost")

        assert code == 1
        assert output.strip() == "error: No user named 'ghost'"
