"""An attacker's and a careless client's requests: each gets a clear 4xx, never a 500, a
leak or a silently different answer, the same on SQLite and PostgreSQL; and the OpenAPI
document tells the truth about every error."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.maintenance.conftest import ISSUES, file_issue
from tests.conftest import Account

API = "/api/v1"
ALERTS = f"{API}/maintenance/alerts"


class TestLikelyDuplicatesRespectVisibility:
    async def test_a_user_never_sees_another_users_issue_as_a_likely_duplicate(
        self, client: httpx.AsyncClient, rita: Account, una: Account
    ) -> None:
        await file_issue(
            client, rita, title="Invoice PDF export crashes for customer Acme", description=""
        )

        mine = await file_issue(client, una, title="Invoice PDF export crashes", description="")

        assert mine["likely_duplicates"] == []

    async def test_a_user_sees_likely_duplicates_among_their_own_issues(
        self, client: httpx.AsyncClient, una: Account
    ) -> None:
        first = await file_issue(
            client, una, title="Invoice PDF export crashes for big invoices", description=""
        )

        second = await file_issue(client, una, title="Invoice PDF export crashes", description="")

        assert [c["id"] for c in second["likely_duplicates"]] == [first["id"]]

    async def test_staff_see_likely_duplicates_across_reporters(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        first = await file_issue(
            client, rita, title="Invoice PDF export crashes for customer Acme", description=""
        )

        staff = await file_issue(client, dev, title="Invoice PDF export crashes", description="")

        assert [c["id"] for c in staff["likely_duplicates"]] == [first["id"]]


class TestNulCharacters:
    async def test_a_login_with_nul_in_the_username_is_a_400(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{API}/auth/token",
            content=b"username=a%00b&password=whatever1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

        assert response.status_code == 400
        assert "NUL" in response.json()["detail"]

    @pytest.mark.parametrize(
        "query",
        [
            "q=a%00b",
            "assignee=a%00b",
            "reporter=a%00b",
            "labels=a%00b",
            "status=open%00",
        ],
    )
    async def test_nul_in_an_issue_filter_is_a_400_not_a_different_answer(
        self, client: httpx.AsyncClient, dev: Account, query: str
    ) -> None:
        await file_issue(client, dev, title="Something a filter could match", description="")

        response = await client.get(f"{ISSUES}?{query}", headers=dev.headers)

        assert response.status_code == 400
        assert "NUL" in response.json()["detail"]

    async def test_nul_in_the_alert_component_filter_is_a_400(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(f"{ALERTS}?component=api%00", headers=dev.headers)

        assert response.status_code == 400

    async def test_nul_in_a_path_is_a_400(self, client: httpx.AsyncClient, admin_headers) -> None:
        response = await client.get(f"{API}/users/a%00b/tokens", headers=admin_headers)

        assert response.status_code == 400

    async def test_invalid_utf8_in_a_query_is_a_400(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(f"{ISSUES}?q=%ff%fe", headers=dev.headers)

        assert response.status_code == 400
        assert "UTF-8" in response.json()["detail"]

    @pytest.mark.parametrize(
        "body",
        [
            {"title": "a\x00b", "issue_type": "bug"},
            {"title": "ok", "description": "x\x00", "issue_type": "bug"},
            {"title": "ok", "issue_type": "bug", "labels": ["ex\x00port"]},
        ],
    )
    async def test_nul_in_an_issue_is_a_422_and_nothing_is_stored(
        self, client: httpx.AsyncClient, dev: Account, body: dict[str, Any]
    ) -> None:
        response = await client.post(ISSUES, json=body, headers=dev.headers)

        assert response.status_code == 422
        assert "NUL" in json.dumps(response.json()["detail"])
        listed = await client.get(ISSUES, headers=dev.headers)
        assert listed.json()["total"] == 0

    async def test_nul_in_a_comment_is_a_422(self, client: httpx.AsyncClient, dev: Account) -> None:
        issue = await file_issue(client, dev, title="Commented on", description="")

        response = await client.post(
            f"{ISSUES}/{issue['id']}/comments", json={"body": "a\x00b"}, headers=dev.headers
        )

        assert response.status_code == 422

    async def test_a_plain_search_still_finds_what_it_should(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        await file_issue(client, dev, title="Export fails", description="")
        await file_issue(client, dev, title="Dark mode", description="")

        found = await client.get(f"{ISSUES}?q=export", headers=dev.headers)

        assert [i["title"] for i in found.json()["items"]] == ["Export fails"]

    async def test_sixty_hostile_logins_are_client_errors_never_server_errors(
        self, client: httpx.AsyncClient
    ) -> None:
        statuses = set()
        for _ in range(60):
            response = await client.post(
                f"{API}/auth/token",
                content=b"username=a%00b&password=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            statuses.add(response.status_code)

        assert statuses == {400}


class TestDatetimes:
    @pytest.mark.parametrize("path", [ISSUES, f"{ISSUES}/statistics"])
    @pytest.mark.parametrize(
        "value",
        [
            "2024-01-01",
            "2024-01-01T00:00:00",
            "0001-01-01T00:00:00%2B14:00",
            "9999-12-31T23:59:59-14:00",
            "not-a-date",
        ],
    )
    async def test_a_date_without_offset_or_out_of_range_is_a_422(
        self, client: httpx.AsyncClient, dev: Account, path: str, value: str
    ) -> None:
        response = await client.get(f"{path}?created_after={value}", headers=dev.headers)

        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["query", "created_after"]

    async def test_an_instant_with_its_offset_filters(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        await file_issue(client, dev, title="Recent", description="")

        before = await client.get(
            f"{ISSUES}?created_before=2000-01-01T00:00:00%2B02:00", headers=dev.headers
        )
        after = await client.get(
            f"{ISSUES}?created_after=2000-01-01T00:00:00Z", headers=dev.headers
        )

        assert (before.json()["total"], after.json()["total"]) == (0, 1)

    async def test_a_maintenance_window_out_of_range_is_a_422(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        body = {
            "name": "far",
            "starts_at": "0001-01-01T00:00:00+14:00",
            "ends_at": "0001-01-02T00:00:00+14:00",
        }

        response = await client.post(
            f"{API}/maintenance/maintenance-windows", json=body, headers=dev.headers
        )

        assert response.status_code == 422


class TestIntegers:
    @pytest.mark.parametrize("path", [ISSUES, ALERTS])
    async def test_a_huge_offset_is_a_422(
        self, client: httpx.AsyncClient, dev: Account, path: str
    ) -> None:
        response = await client.get(f"{path}?offset=9223372036854775808", headers=dev.headers)

        assert response.status_code == 422

    @pytest.mark.parametrize("token_id", ["9223372036854775808", "2147483648", "0", "-1"])
    async def test_a_token_id_no_row_can_have_is_a_422(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str], token_id: str
    ) -> None:
        response = await client.delete(f"{API}/tokens/{token_id}", headers=admin_headers)

        assert response.status_code == 422

    @pytest.mark.parametrize(
        "path",
        [f"{ISSUES}/2147483648", f"{ALERTS}/2147483648", f"{ALERTS}/2147483648/acknowledge"],
    )
    async def test_an_id_beyond_the_stores_integer_is_a_422(
        self, client: httpx.AsyncClient, dev: Account, path: str
    ) -> None:
        method = "POST" if path.endswith("acknowledge") else "GET"

        response = await client.request(method, path, headers=dev.headers)

        assert response.status_code == 422

    async def test_duplicate_of_beyond_the_stores_integer_is_a_422(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        issue = await file_issue(client, dev, title="A copy", description="")

        response = await client.patch(
            f"{ISSUES}/{issue['id']}/status",
            json={"status": "closed", "resolution": "duplicate", "duplicate_of": 2147483648},
            headers=dev.headers,
        )

        assert response.status_code == 422


class TestValidationErrorsAreSafeToSend:
    async def test_an_infinite_number_is_a_422_without_echoing_it(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.post(
            ISSUES,
            content=b'{"title": "t", "issue_type": "bug", "priority": 1e999999}',
            headers={**dev.headers, "Content-Type": "application/json"},
        )

        assert response.status_code == 422
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", "priority"]
        assert "input" not in problem

    async def test_a_lone_surrogate_is_a_422(self, client: httpx.AsyncClient, dev: Account) -> None:
        response = await client.post(
            ISSUES,
            content=b'{"title": "\\ud800", "issue_type": "bug"}',
            headers={**dev.headers, "Content-Type": "application/json"},
        )

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "title"]

    async def test_a_refused_password_is_never_echoed(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.post(
            f"{API}/users",
            json={"username": "dana", "password": "hunter2"},
            headers=admin_headers,
        )

        assert response.status_code == 422
        assert "hunter2" not in response.text
        assert response.json()["detail"][0]["loc"] == ["body", "password"]

    async def test_other_fields_are_echoed_to_help_the_caller(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.post(
            ISSUES, json={"title": "t", "issue_type": "bugg"}, headers=dev.headers
        )

        assert response.json()["detail"][0]["input"] == "bugg"


class TestSecurityHeaders:
    async def test_every_response_carries_the_browser_safety_headers(
        self, client: httpx.AsyncClient
    ) -> None:
        for response in (
            await client.get("/healthz"),
            await client.get(f"{API}/users/me"),
            await client.get("/no/such/page"),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

    async def test_authenticated_and_token_responses_are_never_cached(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        me = await client.get(f"{API}/users/me", headers=admin_headers)
        login = await client.post(f"{API}/auth/token", data={"username": "x", "password": "y"})

        assert me.headers["cache-control"] == "no-store"
        assert login.headers["cache-control"] == "no-store"

    async def test_hsts_only_over_https(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://wk") as secure:
            over_https = await secure.get("/healthz")
        over_http = await client.get("/healthz")

        assert over_https.headers["strict-transport-security"].startswith("max-age=")
        assert "strict-transport-security" not in over_http.headers


class TestOpenApiDocument:
    async def test_bearer_auth_is_declared_and_required_by_every_protected_operation(
        self, client: httpx.AsyncClient
    ) -> None:
        document = (await client.get("/openapi.json")).json()

        schemes = document["components"]["securitySchemes"]
        assert [s["scheme"] for s in schemes.values()] == ["bearer"]
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                protected = path.startswith(f"{API}/maintenance") or path.startswith(f"{API}/users")
                if protected:
                    assert operation.get("security"), f"{method} {path}"

    async def test_every_error_is_declared_with_the_one_error_schema(
        self, client: httpx.AsyncClient
    ) -> None:
        document = (await client.get("/openapi.json")).json()

        assert "HTTPValidationError" not in json.dumps(document)
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                errors = {code for code in operation["responses"] if code >= "400"}
                assert {"400", "413"} <= errors, f"{method} {path}"
                if operation.get("security"):
                    assert {"401", "403", "503"} <= errors, f"{method} {path}"
                if "{" in path:
                    assert {"404", "422"} <= errors, f"{method} {path}"
                for code in errors:
                    schema = operation["responses"][code]["content"]["application/json"]
                    assert schema["schema"] == {"$ref": "#/components/schemas/ErrorBody"}

    async def test_the_login_declares_wrong_credentials_and_throttling(
        self, client: httpx.AsyncClient
    ) -> None:
        document = (await client.get("/openapi.json")).json()

        login = document["paths"][f"{API}/auth/token"]["post"]
        assert {"401", "429"} <= set(login["responses"])
