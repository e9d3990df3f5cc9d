"""Finding issues: filters, text search, sorting and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.maintenance.conftest import ISSUES, Clock, file_issue, move
from tests.conftest import Account


@pytest.fixture
async def desk(
    client: httpx.AsyncClient, rita: Account, una: Account, dev: Account, clock: Clock
) -> dict[str, int]:
    """Five issues of different kinds, one hour apart."""
    specs: dict[str, tuple[Account, dict[str, Any]]] = {
        "export": (rita, {"title": "Export fails", "priority": "high", "labels": ["export", "ui"]}),
        "login": (una, {"title": "Login slow", "issue_type": "support", "priority": "low"}),
        "api": (rita, {"title": "API returns 500", "priority": "critical", "labels": ["api"]}),
        "dark": (
            una,
            {
                "title": "Dark mode",
                "issue_type": "feature_request",
                "priority": "low",
                "description": "Please add a 100% dark theme",
            },
        ),
        "crash": (rita, {"title": "Crash on save", "priority": "medium", "labels": ["ui"]}),
    }
    ids = {}
    for name, (who, fields) in specs.items():
        ids[name] = (await file_issue(client, who, **fields))["id"]
        clock.advance(hours=1)
    await move(client, dev, ids["api"], "triaged")
    await client.patch(f"{ISSUES}/{ids['api']}", json={"assignee": "dev"}, headers=dev.headers)
    return ids


async def titles(client: httpx.AsyncClient, who: Account, query: str) -> list[str]:
    response = await client.get(f"{ISSUES}?{query}", headers=who.headers)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


class TestFilters:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("status=triaged", ["API returns 500"]),
            (
                "status=open&status=triaged",
                ["Crash on save", "Dark mode", "API returns 500", "Login slow", "Export fails"],
            ),
            ("issue_type=support", ["Login slow"]),
            ("priority=low", ["Dark mode", "Login slow"]),
            ("assignee=dev", ["API returns 500"]),
            ("reporter=una", ["Dark mode", "Login slow"]),
            ("labels=ui", ["Crash on save", "Export fails"]),
            ("labels=ui&labels=export", ["Export fails"]),
            ("q=RETURNS", ["API returns 500"]),
            ("q=100%25", ["Dark mode"]),
            ("q=_", []),
            (
                "created_after=2026-11-02T10:00:00Z&created_before=2026-11-02T12:00:00Z",
                ["API returns 500", "Login slow"],
            ),
        ],
    )
    async def test_filter(
        self, client: httpx.AsyncClient, dev: Account, desk, query: str, expected: list[str]
    ) -> None:
        assert await titles(client, dev, query) == expected


class TestOrderAndPages:
    async def test_sort_by_priority_then_newest(
        self, client: httpx.AsyncClient, dev: Account, desk
    ) -> None:
        assert await titles(client, dev, "sort=-priority") == [
            "API returns 500",
            "Export fails",
            "Crash on save",
            "Dark mode",
            "Login slow",
        ]
        assert (await titles(client, dev, "sort=created"))[0] == "Export fails"

    async def test_sort_by_last_update(self, client: httpx.AsyncClient, dev: Account, desk) -> None:
        assert (await titles(client, dev, "sort=-updated"))[0] == "API returns 500"

    async def test_pages_report_the_total(
        self, client: httpx.AsyncClient, dev: Account, desk
    ) -> None:
        page = (await client.get(f"{ISSUES}?limit=2&offset=2", headers=dev.headers)).json()

        assert page["total"] == 5
        assert [i["title"] for i in page["items"]] == ["API returns 500", "Login slow"]

    @pytest.mark.parametrize(
        "query",
        [
            "limit=0",
            "limit=101",
            "offset=-1",
            "status=lost",
            "sort=title",
            "colour=red",
            "created_after=yesterday",
        ],
    )
    async def test_bad_query_is_422(self, client: httpx.AsyncClient, dev: Account, query) -> None:
        response = await client.get(f"{ISSUES}?{query}", headers=dev.headers)

        assert response.status_code == 422
