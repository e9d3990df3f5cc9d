"""Ingest tokens: an exporter's token posts telemetry and opens nothing else, so one stolen
from an application's environment reads no issue, account or figure."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import main
from app.vocabulary.accounts import Role
from tests.api.otlp_exporters import (
    TRACES,
    TracedService,
    failure,
    ingest_token,
    post_export,
)
from tests.conftest import MakeAccount, bearer


@pytest.fixture
def shop() -> TracedService:
    service = TracedService("shop")
    service.serve("/orders", duration_ms=12.0)
    return service


class TestIssuingIngestTokens:
    async def test_an_admin_issues_one_through_the_api(self, client, admin_headers) -> None:
        await client.post("/api/v1/users", json={"username": "robot"}, headers=admin_headers)

        issued = await client.post(
            "/api/v1/users/robot/tokens",
            json={"name": "shop exporter", "kind": "ingest"},
            headers=admin_headers,
        )

        assert issued.status_code == 201, issued.text
        assert issued.json()["kind"] == "ingest"
        listed = await client.get("/api/v1/users/robot/tokens", headers=admin_headers)
        assert [token["kind"] for token in listed.json()] == ["ingest"]

    async def test_a_session_kind_cannot_be_asked_for(self, client, admin_headers) -> None:
        await client.post("/api/v1/users", json={"username": "robot"}, headers=admin_headers)

        issued = await client.post(
            "/api/v1/users/robot/tokens",
            json={"name": "sneaky", "kind": "session"},
            headers=admin_headers,
        )

        assert issued.status_code == 422

    def test_the_operator_issues_one_with_the_cli(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("WATCHKEEPER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/wk.db")
        monkeypatch.setenv("WATCHKEEPER_CONFIG_FILE", str(tmp_path / "absent.toml"))
        runner = CliRunner()
        assert runner.invoke(main, ["users", "create", "robot", "--no-password"]).exit_code == 0

        created = runner.invoke(main, ["tokens", "create", "robot", "--name", "shop", "--ingest"])

        assert created.exit_code == 0, created.output
        assert created.stdout.strip()


class TestWhatAnIngestTokenMayDo:
    async def test_it_posts_traces(self, client, admin_headers, shop) -> None:
        headers = await ingest_token(client, admin_headers)

        response = await post_export(client, TRACES, shop.export(), headers)

        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/maintenance/issues",
            "/api/v1/users/me",
            "/api/v1/maintenance/performance/analysis",
        ],
    )
    async def test_it_reads_nothing(self, client, admin_headers, path) -> None:
        headers = await ingest_token(client, admin_headers)

        response = await client.get(path, headers=headers)

        assert response.status_code == 403
        assert response.json() == {"detail": "An ingest token may only post telemetry"}

    async def test_an_admins_ingest_token_is_no_admin(self, client, admin_headers) -> None:
        issued = await client.post(
            "/api/v1/users/admin/tokens",
            json={"name": "exporter", "kind": "ingest"},
            headers=admin_headers,
        )
        headers = bearer(issued.json()["token"])

        response = await client.post(
            "/api/v1/users", json={"username": "intruder", "role": "admin"}, headers=headers
        )

        assert response.status_code == 403

    async def test_a_revoked_one_is_refused(self, client, admin_headers, shop) -> None:
        headers = await ingest_token(client, admin_headers)
        [token] = (await client.get("/api/v1/users/exporter/tokens", headers=admin_headers)).json()
        await client.delete(f"/api/v1/tokens/{token['id']}", headers=admin_headers)

        response = await post_export(client, TRACES, shop.export(), headers)

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


class TestWhoElseMayPost:
    async def test_a_developer_may(self, client, make_account: MakeAccount, shop) -> None:
        dev = await make_account("dev", Role.DEVELOPER)

        response = await post_export(client, TRACES, shop.export(), dev.headers)

        assert response.status_code == 200, response.text

    async def test_a_plain_users_token_is_refused(
        self, client, make_account: MakeAccount, shop
    ) -> None:
        rita = await make_account("rita", Role.USER)

        response = await post_export(client, TRACES, shop.export(), rita.headers)

        assert response.status_code == 403
        assert "ingest token" in failure(response).message

    @pytest.mark.parametrize("authorization", [None, "Bearer wk_nope", "Basic abc"])
    async def test_no_or_a_wrong_token_is_refused(
        self, client: httpx.AsyncClient, shop, authorization
    ) -> None:
        headers = {"Authorization": authorization} if authorization else {}

        response = await post_export(client, TRACES, shop.export(), headers)

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert failure(response).code == 16  # UNAUTHENTICATED
