"""The public status page, told as its visitors see it: an online shop watched by
Watchkeeper goes down and comes back, and the public reads about it at ``/status``, in the
feed and on the shop's badge — while the private ledger beside it, the staff's internal
notes, the check messages and the maintenance windows' names never show.

The shop and the ledger are real HTTP targets on one local peer that the story switches
off and on; sweeps run through the API, so the history, the alerts, the incident issues
and the robot's recovery notes are the server's own.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import ConfigurationError, Settings
from app.db.base import utcnow
from app.services.health.checks.http import HttpTarget
from app.services.health.checks.registry import parse_targets
from app.vocabulary.health import ComponentKind
from tests.api.maintenance.receivers import HEADERS, MAINTENANCE, Desk, LocalPeer, quiet_system
from tests.api.maintenance.test_alerts import HEALTH_RULES_ONLY
from tests.conftest import Account
from tests.web.conftest import MeetPerson
from tests.web.seed import COMPONENTS, PUBLIC_NAMES

SHOP = "shop-frontend"
SHOP_SHOWN = "Online Shop"
LEDGER = "ledger-db"
# What dana writes: for the public on the shop's incident and on the ledger's (which the
# public never sees, the ledger being private), and internally on both.
SHOP_NOTE = "We found the cause and are rolling back the last release."
LEDGER_NOTE = "Ledger writes are paused while the replica catches up."
INTERNAL_NOTE = "Root cause: the release exhausted its connection pool; see the runbook."
# Staff name their windows for themselves; the public sees only when and what.
SHOP_WINDOW = f"Upgrade {SHOP} to v2"
LEDGER_WINDOW = f"Swap the disks of {LEDGER}"
ATOM = "{http://www.w3.org/2005/Atom}"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def settings(settings: Settings, peer: LocalPeer, request: pytest.FixtureRequest) -> Settings:
    """The shop is public under its display name, the ledger private; the page is on
    unless a test asks for it off (``indirect`` parametrisation)."""
    watched = [
        HttpTarget(
            kind=ComponentKind.HTTP,
            name=SHOP,
            url=peer.url("/shop"),
            timeout_s=2,
            public=True,
            display_name=SHOP_SHOWN,
        ),
        HttpTarget(kind=ComponentKind.HTTP, name=LEDGER, url=peer.url("/ledger"), timeout_s=2),
    ]
    return settings.model_copy(
        update={
            "status_page_enabled": getattr(request, "param", True),
            "targets": [quiet_system(), *watched],
            "alert_rules": HEALTH_RULES_ONLY,
        }
    )


@pytest.fixture
def desk(app: FastAPI, client: httpx.AsyncClient) -> Desk:
    return Desk(app, client)


async def comment(client: httpx.AsyncClient, dana: Account, issue_id: int, **body: Any) -> None:
    answer = await client.post(
        f"{MAINTENANCE}/issues/{issue_id}/comments", json=body, headers=dana.headers
    )
    assert answer.status_code == 201, answer.text


async def plan_window(client: httpx.AsyncClient, name: str, component: str) -> None:
    """A maintenance window tomorrow for two hours, as staff plan one."""
    starts = utcnow() + timedelta(days=1)
    body = {
        "name": name,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "components": [component],
    }
    answer = await client.post(f"{MAINTENANCE}/maintenance-windows", json=body, headers=HEADERS)
    assert answer.status_code == 201, answer.text


@pytest.fixture
async def outage(client: httpx.AsyncClient, desk: Desk, peer: LocalPeer, dana: Account) -> None:
    """Shop and ledger go down together and come back; dana writes to the public and
    internally on both incidents; staff plan a window for each."""
    peer.up = False
    await desk.sweeps(3)
    listed = await client.get(
        f"{MAINTENANCE}/issues", params={"issue_type": "incident"}, headers=HEADERS
    )
    opened = {issue["title"]: issue["id"] for issue in listed.json()["items"]}
    shop, ledger = opened[f"Incident: {SHOP} is down"], opened[f"Incident: {LEDGER} is down"]
    await comment(client, dana, shop, body=SHOP_NOTE)
    await comment(client, dana, ledger, body=LEDGER_NOTE)
    for issue_id in (shop, ledger):
        await comment(client, dana, issue_id, body=INTERNAL_NOTE, internal=True)
    peer.up = True
    await desk.sweeps(2)
    await plan_window(client, SHOP_WINDOW, SHOP)
    await plan_window(client, LEDGER_WINDOW, LEDGER)


async def public_answers(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """Everything the public can fetch: the page, the feed and the shop's badge."""
    return {
        path: await client.get(path)
        for path in ("/status", "/status/feed.atom", f"/status/badge/{quote(SHOP_SHOWN)}.svg")
    }


async def internal_words(client: httpx.AsyncClient) -> list[str]:
    """What must never reach the public: the private component, the shop's own name, the
    internal note, the windows' names, the robot's notes and every check message."""
    health = (await client.get(f"{MAINTENANCE}/health", headers=HEADERS)).json()
    messages = [c["message"] for c in health["components"] if c["message"]]
    alerts = (await client.get(f"{MAINTENANCE}/alerts", headers=HEADERS)).json()["items"]
    assert messages and alerts
    return [
        LEDGER,
        LEDGER_NOTE,
        SHOP,
        INTERNAL_NOTE,
        SHOP_WINDOW,
        LEDGER_WINDOW,
        "was down for",  # the robot's recovery note
        *messages,
        *(alert["message"] for alert in alerts),
    ]


class TestPublicTargets:
    def test_a_target_is_private_and_shown_by_its_name_unless_configured(self) -> None:
        plain, shown = parse_targets(
            [
                {"name": "api", "kind": "tcp", "url": "tcp://api:80"},
                {
                    "name": "web",
                    "kind": "tcp",
                    "url": "tcp://web:80",
                    "public": True,
                    "display_name": "Online shop",
                },
            ]
        )

        assert (plain.public, plain.display_name) == (False, None)
        assert (shown.public, shown.display_name) == (True, "Online shop")

    @pytest.mark.parametrize(
        "display_name", ["", "x" * 101, "Shop\nDown", "Shop\x1b[31m", "Shop\u0085"]
    )
    def test_a_display_name_is_short_printable_text(self, display_name: str) -> None:
        entry = {"name": "web", "kind": "tcp", "url": "tcp://web:80", "display_name": display_name}

        with pytest.raises(ConfigurationError, match="target 'web': display_name"):
            parse_targets([entry])


class TestSwitchedOff:
    @pytest.mark.parametrize("settings", [False], indirect=True, ids=["off"])
    @pytest.mark.usefixtures("outage")
    async def test_everything_is_not_found_until_an_operator_turns_it_on(
        self, client: httpx.AsyncClient
    ) -> None:
        answers = await public_answers(client)

        assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(
            answers, 404
        )
        assert (await client.get("/status/style.css")).status_code == 404


class TestStatusPage:
    async def test_before_any_check_the_public_component_waits_for_data(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get("/status")

        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert SHOP_SHOWN in page.text
        assert "No data yet" in page.text
        assert LEDGER not in page.text
        assert SHOP not in page.text

    @pytest.mark.usefixtures("outage")
    async def test_the_public_reads_of_the_shop_and_nothing_internal(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get("/status")

        assert page.status_code == 200
        assert SHOP_SHOWN in page.text
        assert "Operational" in page.text
        assert "All systems operational" in page.text
        assert "Recent incidents" in page.text
        assert f"{SHOP_SHOWN} unavailable" in page.text
        assert SHOP_NOTE in page.text
        assert f"Resolved: {SHOP_SHOWN} is available again, after " in page.text
        assert "Scheduled maintenance" in page.text
        assert page.text.count("Planned:") == 1  # the shop's window; the ledger's is private
        assert page.text.count('class="bar ') == 90
        for word in await internal_words(client):
            assert word not in page.text, word

    @pytest.mark.usefixtures("outage")
    async def test_no_internal_word_in_the_page_the_feed_or_the_badge(
        self, client: httpx.AsyncClient
    ) -> None:
        answers = await public_answers(client)
        hidden = await internal_words(client)

        for path, answer in answers.items():
            assert answer.status_code == 200, path
            for word in hidden:
                assert word not in answer.text, (path, word)

    async def test_a_weekly_window_shows_when_and_what_it_covers_never_its_name(
        self, client: httpx.AsyncClient
    ) -> None:
        # Every day from half an hour ago for an hour, over every component.
        started = utcnow() - timedelta(minutes=30)
        body = {
            "name": f"Nightly vacuum of {LEDGER}",
            "recurrence": {
                "weekdays": list(range(7)),
                "start": started.strftime("%H:%M"),
                "duration_minutes": 60,
            },
        }
        planned = await client.post(
            f"{MAINTENANCE}/maintenance-windows", json=body, headers=HEADERS
        )
        assert planned.status_code == 201, planned.text

        page = (await client.get("/status")).text

        assert "In progress:" in page
        assert f"{started:%H:%M} UTC" in page
        assert f"{SHOP_SHOWN}</h3>" in page
        assert "No data yet (under maintenance)" in page  # no check has run yet
        assert LEDGER not in page

    async def test_the_page_runs_no_script_under_a_strict_policy(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get("/status")
        style = await client.get("/status/style.css")

        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "<script" not in page.text
        assert " style=" not in page.text
        assert style.status_code == 200
        assert style.headers["content-type"].startswith("text/css")
        assert "/status/style.css?v=" in page.text


class TestFeed:
    @pytest.mark.usefixtures("outage")
    async def test_the_feed_is_atom_with_an_entry_per_incident_and_update(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.get("/status/feed.atom")

        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/atom+xml")
        feed = ET.fromstring(answer.content)
        assert feed.tag == f"{ATOM}feed"
        for required in ("id", "title", "updated", "author"):
            assert feed.find(f"{ATOM}{required}") is not None, required
        titles = [entry.findtext(f"{ATOM}title") for entry in feed.iter(f"{ATOM}entry")]
        assert titles == [
            f"{SHOP_SHOWN} unavailable",
            f"{SHOP_SHOWN} unavailable: resolved",
            f"{SHOP_SHOWN} unavailable: update",
        ]
        ids = [entry.findtext(f"{ATOM}id") for entry in feed.iter(f"{ATOM}entry")]
        assert len(set(ids)) == 3
        contents = [entry.findtext(f"{ATOM}content") for entry in feed.iter(f"{ATOM}entry")]
        assert SHOP_NOTE in contents

    async def test_a_quiet_feed_is_still_a_valid_feed(self, client: httpx.AsyncClient) -> None:
        feed = ET.fromstring((await client.get("/status/feed.atom")).content)

        assert feed.tag == f"{ATOM}feed"
        assert feed.findtext(f"{ATOM}updated")
        assert list(feed.iter(f"{ATOM}entry")) == []


class TestBadge:
    @pytest.mark.usefixtures("outage")
    async def test_the_badge_shows_the_status_and_the_uptime_of_30_days(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.get(f"/status/badge/{quote(SHOP_SHOWN)}.svg")

        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("image/svg+xml")
        assert answer.headers["cache-control"] == "public, max-age=30"
        badge = ET.fromstring(answer.content)
        assert badge.tag == f"{SVG}svg"
        words = [text.text for text in badge.iter(f"{SVG}text")]
        assert words[0] == SHOP_SHOWN
        assert words[1] is not None
        assert words[1].startswith("Operational · ")
        assert words[1].endswith("%")
        assert "over 30 days" in (badge.findtext(f"{SVG}title") or "")

    @pytest.mark.parametrize("name", [LEDGER, SHOP, "nobody", "online shop"])
    async def test_no_badge_for_a_private_an_internal_or_an_unknown_name(
        self, client: httpx.AsyncClient, name: str
    ) -> None:
        answer = await client.get(f"/status/badge/{quote(name)}.svg")

        assert answer.status_code == 404
        assert LEDGER not in answer.text

    @pytest.mark.parametrize(
        "path",
        [
            "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "..%2F..%2Fetc%2Fpasswd",
            "%00",
            "%FF%FE",
            "%E2%80%AE" + "x" * 5000,
            "%20",
            "a.svg%3F",
        ],
    )
    async def test_hostile_names_are_refused_never_a_crash(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        answer = await client.get(f"/status/badge/{path}.svg")

        assert 400 <= answer.status_code < 500
        assert "<script>" not in answer.text


class TestInABrowser:
    """The seeded dashboard of the browser stories (whose accessibility test runs axe-core
    on ``/status`` too), visited by someone who is not signed in."""

    def test_a_visitor_sees_only_the_public_components_and_the_feed_and_badges_parse(
        self, meet: MeetPerson
    ) -> None:
        visitor = meet()

        assert visitor.visit("/status") == 200

        shown = visitor.page.locator(".component h3").all_inner_texts()
        assert shown == [PUBLIC_NAMES[c.name] for c in COMPONENTS if c.name in PUBLIC_NAMES]
        # The internal names, the public components' own among them; "system", "store" and
        # "search" are also words of the page ("All systems operational"), so only the
        # hyphenated names can tell.
        hidden = [c.name for c in COMPONENTS if "-" in c.name]
        site = visitor.dashboard.url
        answers = [visitor.page.content()]
        feed = visitor.context.request.get(f"{site}/status/feed.atom")
        assert ET.fromstring(feed.body()).tag == f"{ATOM}feed"
        answers.append(feed.text())
        for name in shown:
            badge = visitor.context.request.get(f"{site}/status/badge/{quote(name)}.svg")
            assert ET.fromstring(badge.body()).tag == f"{SVG}svg", name
            answers.append(badge.text())
        for answer in answers:
            for name in hidden:
                assert name not in answer, name
        assert visitor.problems == []
