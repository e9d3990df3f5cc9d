"""The resolution clock: due times per priority, pauses while waiting on the reporter,
the at-risk flag and breaches."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from app.vocabulary.issues import Priority
from tests.api.maintenance.conftest import ISSUES, Clock, file_issue, walk_to
from tests.conftest import Account


async def read(client: httpx.AsyncClient, who: Account, issue_id: int) -> dict[str, Any]:
    return dict((await client.get(f"{ISSUES}/{issue_id}", headers=who.headers)).json())


class TestResolutionClock:
    async def test_due_in_48_hours_at_risk_in_the_last_hour_then_breached(
        self, client: httpx.AsyncClient, rita: Account, clock: Clock
    ) -> None:
        issue = await file_issue(client, rita)
        assert issue["sla_due_at"] == "2026-11-04T09:00:00Z"

        clock.advance(hours=46, minutes=59)
        early = await read(client, rita, issue["id"])
        clock.advance(minutes=2)
        risky = await read(client, rita, issue["id"])
        clock.advance(hours=1)
        late = await read(client, rita, issue["id"])

        assert (early["sla_at_risk"], early["sla_breached"]) == (False, False)
        assert (risky["sla_at_risk"], risky["sla_breached"]) == (True, False)
        assert (late["sla_at_risk"], late["sla_breached"]) == (False, True)

    async def test_target_is_configurable_per_priority(
        self, client: httpx.AsyncClient, rita: Account, clock: Clock, app: FastAPI, dev: Account
    ) -> None:
        app.state.settings.issue_resolution_target_hours[Priority.CRITICAL] = 8.0
        issue = await file_issue(client, rita, priority="critical")
        other = await file_issue(client, rita, priority="low")

        lowered = await client.patch(
            f"{ISSUES}/{other['id']}", json={"priority": "critical"}, headers=dev.headers
        )

        assert issue["sla_due_at"] == "2026-11-02T17:00:00Z"
        assert other["sla_due_at"] == "2026-11-04T09:00:00Z"
        assert lowered.json()["sla_due_at"] == "2026-11-02T17:00:00Z"

    async def test_waiting_on_the_reporter_pauses_the_clock_until_they_reply(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, clock: Clock
    ) -> None:
        issue = await file_issue(client, rita)
        path = f"{ISSUES}/{issue['id']}"
        clock.advance(hours=1)
        waiting = await client.patch(path, json={"waiting_on_reporter": True}, headers=dev.headers)
        clock.advance(hours=50)
        paused = await read(client, rita, issue["id"])

        reply = await client.post(
            f"{path}/comments", json={"body": "Here is the file."}, headers=rita.headers
        )
        resumed = await read(client, rita, issue["id"])

        assert waiting.json()["waiting_on_reporter"] is True
        assert paused["sla_breached"] is False
        assert paused["sla_due_at"] == "2026-11-06T11:00:00Z"  # 48 h + the 50 h pause so far
        assert reply.status_code == 201
        assert resumed["waiting_on_reporter"] is False
        assert resumed["sla_due_at"] == "2026-11-06T11:00:00Z"
        pause_events = [e for e in resumed["history"] if e["field"] == "waiting_on_reporter"]
        assert [(e["new_value"], e["actor"]["username"]) for e in pause_events] == [
            ("true", "dev"),
            ("false", "rita"),
        ]

    async def test_late_resolution_stays_breached(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, clock: Clock
    ) -> None:
        issue = await file_issue(client, rita)
        clock.advance(hours=49)

        await walk_to(client, dev, issue["id"], "resolved")
        clock.advance(days=30)

        resolved = await read(client, rita, issue["id"])
        assert resolved["status"] == "resolved"
        assert resolved["sla_breached"] is True
        assert resolved["sla_at_risk"] is False
