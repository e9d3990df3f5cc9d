"""The desk's statistics, checked against figures worked out by hand.

The story (T0 = Monday 2026-11-02 09:00 UTC; every target 48 h):
- A  bug/high by rita at T0: triaged T0+2h, first reply T0+3h, resolved T0+10h, verified
     and closed T0+11h.                       triage 2h, response 3h, resolution 10h
- B  feature/low by rita at T0+1h: triaged T0+5h, reply and "waiting on reporter" T0+6h,
     rita replies T0+16h (10 h pause), resolved T0+61h (50 h of work: late), reopened by
     rita T0+62h.                              triage 4h, response 5h
- C  support/medium by una at T0+2h: closed as wont_fix T0+4h.      resolution 2h
- D  incident/critical by una at T0+3h: untouched.
- E  bug/medium by rita at T0+4h: triaged and assigned to dev T0+5h.  triage 1h
- F  feature/low by una at T0+14h30: untouched, due T0+62h30.
Now is T0+62h (Wednesday 23:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.maintenance.conftest import ISSUES, Clock, file_issue, move
from tests.conftest import Account

STATISTICS = f"{ISSUES}/statistics"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def at(clock: Clock, hours: float) -> None:
    """Sets the clock to T0 + ``hours``."""
    clock.now = T0 + timedelta(hours=hours)


@pytest.fixture
async def story(
    client: httpx.AsyncClient, rita: Account, una: Account, dev: Account, clock: Clock
) -> dict[str, int]:
    ids: dict[str, int] = {}

    async def report(name: str, who: Account, issue_type: str, priority: str) -> None:
        ids[name] = (
            await file_issue(
                client,
                who,
                title=f"Issue {name}",
                issue_type=issue_type,
                priority=priority,
                description=f"Story issue {name}",
            )
        )["id"]

    async def assign(name: str) -> None:
        await client.patch(f"{ISSUES}/{ids[name]}", json={"assignee": "dev"}, headers=dev.headers)
        assert (await move(client, dev, ids[name], "assigned")).status_code == 200

    async def comment(name: str, who: Account, body: str) -> None:
        posted = await client.post(
            f"{ISSUES}/{ids[name]}/comments", json={"body": body}, headers=who.headers
        )
        assert posted.status_code == 201

    async def develop(name: str) -> None:
        for status in ("in_progress", "testing", "resolved"):
            assert (await move(client, dev, ids[name], status)).status_code == 200

    await report("A", rita, "bug", "high")
    await at(clock, 1)
    await report("B", rita, "feature_request", "low")
    await at(clock, 2)
    await report("C", una, "support", "medium")
    await move(client, dev, ids["A"], "triaged")
    await at(clock, 3)
    await report("D", una, "incident", "critical")
    await comment("A", dev, "On it.")
    await at(clock, 4)
    await report("E", rita, "bug", "medium")
    assert (await move(client, dev, ids["C"], "closed", resolution="wont_fix")).status_code == 200
    await at(clock, 5)
    await move(client, dev, ids["B"], "triaged")
    await move(client, dev, ids["E"], "triaged")
    await assign("E")
    await at(clock, 6)
    await comment("B", dev, "Which browser?")
    await client.patch(
        f"{ISSUES}/{ids['B']}", json={"waiting_on_reporter": True}, headers=dev.headers
    )
    await at(clock, 10)
    await assign("A")
    await develop("A")
    await at(clock, 11)
    assert (await move(client, rita, ids["A"], "verified")).status_code == 200
    assert (await move(client, dev, ids["A"], "closed")).status_code == 200
    await at(clock, 14.5)
    await report("F", una, "feature_request", "low")
    await at(clock, 16)
    await comment("B", rita, "Firefox 131.")
    await at(clock, 61)
    await assign("B")
    await develop("B")
    await at(clock, 62)
    assert (await move(client, rita, ids["B"], "open")).status_code == 200
    return ids


class TestStatistics:
    async def test_every_figure_matches_the_hand_computed_one(
        self, client: httpx.AsyncClient, dev: Account, story
    ) -> None:
        response = await client.get(STATISTICS, headers=dev.headers)
        assert response.status_code == 200, response.text
        stats = response.json()

        assert stats["total"] == 6
        assert stats["by_status"] == {
            "open": 3,
            "triaged": 0,
            "assigned": 1,
            "in_progress": 0,
            "testing": 0,
            "resolved": 0,
            "verified": 0,
            "closed": 2,
        }
        assert stats["by_type"] == {
            "bug": 2,
            "feature_request": 2,
            "support": 1,
            "incident": 1,
        }
        assert stats["by_priority"] == {"low": 2, "medium": 2, "high": 1, "critical": 1}
        assert (stats["open"], stats["in_progress"], stats["resolved"]) == (4, 0, 2)
        assert stats["time_to_triage_hours"] == {
            "count": 3,
            "avg": 2.333,
            "median": 2.0,
            "p90": 3.6,
        }
        assert stats["time_to_first_response_hours"] == {
            "count": 2,
            "avg": 4.0,
            "median": 4.0,
            "p90": 4.8,
        }
        assert stats["time_to_resolution_hours"] == {
            "count": 2,
            "avg": 6.0,
            "median": 6.0,
            "p90": 9.2,
        }
        assert stats["resolution_target"] == {
            "target_hours": {"low": 48.0, "medium": 48.0, "high": 48.0, "critical": 48.0},
            "resolved": 2,
            "within_target": 2,
            "share": 1.0,
        }
        assert (stats["past_target"], stats["at_risk"]) == (3, 1)
        assert stats["reopens"] == 1
        assert stats["reopen_rate"] == 0.3333
        assert stats["verification_rejection_rate"] == 0.5
        assert stats["close_reasons"] == {
            "fixed": 1,
            "wont_fix": 1,
            "duplicate": 0,
            "cannot_reproduce": 0,
        }
        assert stats["backlog_by_age"] == {"< 1d": 0, "1-7d": 4, "7-30d": 0, "> 30d": 0}
        assert len(stats["weekly"]) == 12
        assert stats["weekly"][-1] == {
            "week_start": "2026-11-02T00:00:00Z",
            "created": 6,
            "resolved": 2,
        }
        assert all(w["created"] == w["resolved"] == 0 for w in stats["weekly"][:-1])
        assert stats["weekly"][0]["week_start"] == "2026-08-17T00:00:00Z"
        assert stats["open_per_assignee"] == [
            {"assignee": {"id": dev.id, "username": "dev"}, "open": 2},
            {"assignee": None, "open": 2},
        ]

    async def test_filters_narrow_every_figure(
        self, client: httpx.AsyncClient, dev: Account, story
    ) -> None:
        bugs = (await client.get(f"{STATISTICS}?issue_type=bug", headers=dev.headers)).json()
        late = (
            await client.get(
                f"{STATISTICS}?created_after=2026-11-02T12:00:00Z", headers=dev.headers
            )
        ).json()

        assert bugs["total"] == 2
        assert bugs["time_to_triage_hours"]["count"] == 2
        assert bugs["time_to_resolution_hours"] == {
            "count": 1,
            "avg": 10.0,
            "median": 10.0,
            "p90": 10.0,
        }
        assert late["total"] == 3  # D, E, F
        assert late["by_priority"]["critical"] == 1

    async def test_a_filter_that_keeps_every_issue_changes_no_figure(
        self, client: httpx.AsyncClient, dev: Account, story
    ) -> None:
        # The whole desk is counted off indexes, a filtered one by a scan: the same figures.
        whole = (await client.get(STATISTICS, headers=dev.headers)).json()
        since_ever = {"created_after": "2000-01-01T00:00:00Z"}
        filtered = (await client.get(STATISTICS, params=since_ever, headers=dev.headers)).json()

        assert filtered == whole

    async def test_empty_desk_has_zeros_and_nulls(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        stats = (await client.get(STATISTICS, headers=dev.headers)).json()

        assert stats["total"] == 0
        assert stats["time_to_resolution_hours"] == {
            "count": 0,
            "avg": None,
            "median": None,
            "p90": None,
        }
        assert stats["reopen_rate"] is None
        assert stats["resolution_target"]["share"] is None

    async def test_statistics_path_is_never_an_issue_id(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(STATISTICS, headers=dev.headers)

        assert response.status_code == 200
        assert "total" in response.json()
