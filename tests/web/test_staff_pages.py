"""The staff pages — components, performance, alerts — show what the API answers, and a
user is kept out of every one of them."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from app.db.base import utcnow
from app.db.models import Alert
from app.vocabulary.alerts import AlertSeverity, AlertState
from tests.web.conftest import Browser

MAINTENANCE = "/api/v1/maintenance"
STAFF_ONLY = (
    "/performance",
    "/performance/insights",
    "/alerts",
    "/components/store",
    "/overview/live",
    "/overview/objectives",
)


async def collect(client: httpx.AsyncClient, headers: dict[str, str], sweeps: int = 2) -> None:
    """Runs the real checks (the host and the store) and stores them, as the monitor would."""
    for _ in range(sweeps):
        swept = await client.post(f"{MAINTENANCE}/metrics/collect", headers=headers)
        assert swept.status_code == 200, swept.text


class TestAUserIsKeptOut:
    async def test_every_staff_page_is_refused(self, rita_browser: Browser) -> None:
        for path in STAFF_ONLY:
            answer = await rita_browser.get(path)

            assert answer.status_code == 403, path
            assert "for developers and admins" in answer.text

    async def test_the_overview_sends_a_user_to_their_issues_and_the_nav_has_two_entries(
        self, rita_browser: Browser
    ) -> None:
        home = await rita_browser.get("/")
        mine = await rita_browser.get("/issues")

        nav = re.findall(r'<li><a href="([^"]+)"', mine.text)
        assert (home.status_code, home.headers["location"]) == (303, "/issues")
        assert nav == ["/issues/new", "/issues"]
        assert ">Report an issue<" in mine.text and ">My issues<" in mine.text

    async def test_a_staff_form_is_refused_even_with_the_right_token(
        self, rita_browser: Browser
    ) -> None:
        answer = await rita_browser.post("/maintenance-windows", name="Sneaky", shape="once")

        assert answer.status_code == 403


class TestOverviewPage:
    async def test_it_lists_the_components_as_the_api_does_and_refreshes_in_parts(
        self, dana_browser: Browser, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        await collect(client, admin_headers)
        listed = (await client.get(f"{MAINTENANCE}/components", headers=admin_headers)).json()

        page = await dana_browser.get("/")
        live = await dana_browser.http.get("/overview/live", headers={"HX-Request": "true"})

        for component in listed["items"]:
            assert f'href="/components/{component["name"]}"' in page.text
            assert f"pill-{component['status']}" in page.text
        assert f"banner-{listed['status']}" in page.text
        assert 'hx-get="/overview/objectives"' in page.text
        assert "<html" not in live.text
        assert 'id="live-top"' in live.text and 'id="live-components"' in live.text

    async def test_the_objectives_are_the_desk_and_the_slo_of_the_api(
        self, dana_browser: Browser, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        slo = (await client.get(f"{MAINTENANCE}/slo", headers=admin_headers)).json()

        fragment = await dana_browser.http.get(
            "/overview/objectives", headers={"HX-Request": "true"}
        )
        whole = await dana_browser.get("/overview/objectives")

        assert "<html" not in fragment.text and "<html" in whole.text
        for criterion in slo["criteria"]:
            assert html.escape(criterion["description"]) in fragment.text
        assert 'data-figure="issues.open">0<' in fragment.text


class TestComponentPage:
    async def test_it_shows_the_component_as_the_api_does(
        self,
        dana_browser: Browser,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
    ) -> None:
        await collect(client, admin_headers)

        api = (await client.get(f"{MAINTENANCE}/components/store", headers=admin_headers)).json()
        page = await dana_browser.get("/components/store?range=7d")

        assert page.status_code == 200
        assert f"pill-{api['component']['status']}" in page.text
        assert api["component"]["last_message"] in page.text
        assert page.text.count("<details><summary>") >= len(api["recent_checks"])
        assert 'aria-current="page">7d<' in page.text

    async def test_an_unknown_component_is_a_not_found_page(self, dana_browser: Browser) -> None:
        answer = await dana_browser.get("/components/nothing-here")

        assert answer.status_code == 404
        assert "nothing-here" in answer.text

    async def test_the_api_lists_components_problems_first(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        await collect(client, admin_headers, sweeps=1)

        listed = (await client.get(f"{MAINTENANCE}/components", headers=admin_headers)).json()

        assert {c["name"] for c in listed["items"]} == {"system", "store"}
        assert sum(listed["counts"].values()) == listed["total"] == 2


class TestPerformancePage:
    async def test_the_endpoint_table_is_the_analysis_sorted_as_asked(
        self,
        dana_browser: Browser,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
        app: FastAPI,
    ) -> None:
        for _ in range(3):
            await client.get("/api/v1/users/me", headers=admin_headers)
        await client.get("/readyz")
        await app.state.request_tracking.flusher.flush()

        api = (
            await client.get(f"{MAINTENANCE}/performance/analysis?hours=24", headers=admin_headers)
        ).json()
        page = await dana_browser.get("/performance?service=&hours=24&sort=requests&order=desc")

        shown = re.findall(r'<td><span class="mono">(\w+) ([^<]+)</span>', page.text)
        by_requests = sorted(api["endpoints"], key=lambda e: -e["requests"])
        assert page.status_code == 200
        assert shown[0] == (by_requests[0]["method"], by_requests[0]["route"])
        assert len(shown) == len(api["endpoints"])
        assert 'aria-sort="descending"' in page.text

    async def test_the_insights_are_a_fragment_for_htmx_and_a_page_without_it(
        self, dana_browser: Browser
    ) -> None:
        fragment = await dana_browser.http.get(
            "/performance/insights?service=", headers={"HX-Request": "true"}
        )
        whole = await dana_browser.get("/performance/insights")

        assert fragment.status_code == whole.status_code == 200
        assert "<html" not in fragment.text and "Bottlenecks" in fragment.text
        assert "<html" in whole.text and "Quarterly trend" in whole.text


class TestAlertsPage:
    async def test_a_firing_alert_is_acknowledged_with_its_button(
        self,
        dana_browser: Browser,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
    ) -> None:
        now = utcnow()
        async with app.state.store.unit_of_work() as session:
            await session.execute(
                insert(Alert),
                [
                    {
                        "key": "component_down:orders-db",
                        "rule": "component_down",
                        "component": "orders-db",
                        "severity": AlertSeverity.CRITICAL,
                        "state": AlertState.FIRING,
                        "message": "orders-db is unhealthy",
                        "figures": {},
                        "first_seen": now - timedelta(minutes=5),
                        "last_seen": now,
                    }
                ],
            )
        before = await dana_browser.get("/alerts")
        alert_id = re.search(r'action="/alerts/(\d+)/acknowledge"', before.text)
        assert alert_id and "orders-db is unhealthy" in before.text

        acknowledged = await dana_browser.post(f"/alerts/{alert_id.group(1)}/acknowledge")

        stored = (
            await client.get(f"{MAINTENANCE}/alerts/{alert_id.group(1)}", headers=admin_headers)
        ).json()
        assert acknowledged.status_code == 303
        assert stored["acknowledged_by"] == "dana"
        assert "/acknowledge" not in (await dana_browser.get("/alerts")).text

    async def test_a_maintenance_window_is_opened_and_ended_with_the_forms(
        self, dana_browser: Browser, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        start = utcnow() - timedelta(minutes=1)
        opened = await dana_browser.post(
            "/maintenance-windows",
            name="Database upgrade",
            shape="once",
            starts_at=start.strftime("%Y-%m-%dT%H:%M"),
            ends_at=(start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            components="store",
            rules=["component_down", "slow_dependency"],
        )
        windows = (
            await client.get(f"{MAINTENANCE}/maintenance-windows", headers=admin_headers)
        ).json()
        (window,) = windows
        ended = await dana_browser.post(f"/maintenance-windows/{window['id']}/end")

        after = (
            await client.get(f"{MAINTENANCE}/maintenance-windows", headers=admin_headers)
        ).json()
        assert opened.status_code == 303
        assert (window["name"], window["components"], window["active"]) == (
            "Database upgrade",
            ["store"],
            True,
        )
        assert window["rules"] == ["component_down", "slow_dependency"]
        assert ended.status_code == 303
        assert after[0]["ended_at"] is not None and after[0]["active"] is False

    async def test_a_weekly_window_and_a_mistaken_one(self, dana_browser: Browser) -> None:
        weekly = await dana_browser.post(
            "/maintenance-windows",
            name="Sunday backups",
            shape="weekly",
            weekdays=["6"],
            start_time="03:00",
            duration_minutes="90",
        )
        backwards = await dana_browser.post(
            "/maintenance-windows",
            name="Backwards",
            shape="once",
            starts_at="2030-01-02T10:00",
            ends_at="2030-01-02T09:00",
        )

        page = await dana_browser.get("/alerts")
        assert weekly.status_code == 303
        assert "weekly on Sunday at 03:00 UTC for 1 h 30 min" in page.text
        assert backwards.status_code == 422 and "ends_at must be after starts_at" in backwards.text
