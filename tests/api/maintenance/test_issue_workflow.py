"""An issue's life: report, triage, assignment, development, testing, resolution,
verification and closure — and every move the workflow refuses."""

from __future__ import annotations

import httpx
import pytest

from app.services.issues.workflow import NEXT_STATUSES
from app.vocabulary.issues import IssueStatus
from tests.api.maintenance.conftest import ISSUES, Clock, file_issue, move, walk_to
from tests.conftest import Account

ALL_STATUSES = [s.value for s in NEXT_STATUSES]


class TestSpecExample:
    async def test_spec_curl_example_works_verbatim(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        created = await client.post(
            "/api/v1/maintenance/issues",
            headers={**admin_headers, "Content-Type": "application/json"},
            content=b"""{"title": "Bug in data generation",
       "description": "Data generation fails for large datasets",
       "issue_type": "bug", "priority": "high"}""",
        )
        listed = await client.get("/api/v1/maintenance/issues?status=open", headers=admin_headers)

        assert created.status_code == 201
        assert created.json()["status"] == "open"
        assert [i["title"] for i in listed.json()["items"]] == ["Bug in data generation"]
        assert listed.json()["total"] == 1


class TestFiling:
    async def test_the_issue_filed_is_the_issue_stored(
        self, client: httpx.AsyncClient, rita: Account
    ) -> None:
        created = await file_issue(
            client, rita, title="Export fails", labels=["ui", "export", "ui"], priority="critical"
        )

        stored = (await client.get(f"{ISSUES}/{created['id']}", headers=rita.headers)).json()
        assert created["reporter"] == {"id": rita.id, "username": rita.username}
        assert created["assignee"] is None
        assert created["labels"] == ["export", "ui"]
        assert created["likely_duplicates"] == []
        shown = {key: value for key, value in created.items() if key != "likely_duplicates"}
        assert shown == {key: stored[key] for key in shown}


class TestHappyPath:
    async def test_reporter_and_developer_take_an_issue_to_closure(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, clock: Clock
    ) -> None:
        issue = await file_issue(client, rita)
        steps = [
            (dev, "triaged"),
            (dev, "assigned"),
            (dev, "in_progress"),
            (dev, "testing"),
            (dev, "resolved"),
            (rita, "verified"),
            (dev, "closed"),
        ]
        for who, status in steps:
            clock.advance(hours=1)
            if status == "assigned":
                await client.patch(
                    f"{ISSUES}/{issue['id']}", json={"assignee": "dev"}, headers=dev.headers
                )
            response = await move(client, who, issue["id"], status)
            assert response.status_code == 200, (status, response.text)

        detail = (await client.get(f"{ISSUES}/{issue['id']}", headers=rita.headers)).json()
        assert detail["status"] == "closed"
        assert detail["resolution"] == "fixed"
        assert detail["assignee"] == {"id": dev.id, "username": "dev"}
        assert detail["triaged_at"] == "2026-11-02T10:00:00Z"
        assert detail["resolved_at"] == "2026-11-02T14:00:00Z"
        assert detail["verified_at"] == "2026-11-02T15:00:00Z"
        assert detail["closed_at"] == "2026-11-02T16:00:00Z"
        assert detail["sla_breached"] is False
        moves = [
            (e["old_value"], e["new_value"], e["actor"]["username"])
            for e in detail["history"]
            if e["field"] == "status"
        ]
        assert moves == [
            (None, "open", "rita"),
            ("open", "triaged", "dev"),
            ("triaged", "assigned", "dev"),
            ("assigned", "in_progress", "dev"),
            ("in_progress", "testing", "dev"),
            ("testing", "resolved", "dev"),
            ("resolved", "verified", "rita"),
            ("verified", "closed", "dev"),
        ]
        assignments = [e for e in detail["history"] if e["field"] == "assignee"]
        assert [(a["old_value"], a["new_value"]) for a in assignments] == [(None, "dev")]

    async def test_failed_test_sends_the_issue_back_to_development(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)
        await walk_to(client, dev, issue["id"], "testing")

        back = await move(client, dev, issue["id"], "in_progress", comment="Fails on Safari")

        assert back.status_code == 200
        assert back.json()["status"] == "in_progress"
        detail = (await client.get(f"{ISSUES}/{issue['id']}", headers=dev.headers)).json()
        assert detail["comments"][-1]["body"] == "Fails on Safari"


class TestRefusedMoves:
    @pytest.mark.parametrize("current", ALL_STATUSES)
    async def test_every_move_off_the_workflow_is_a_409_naming_the_allowed_ones(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, current: str
    ) -> None:
        issue = await file_issue(client, rita)
        await walk_to(client, dev, issue["id"], current)
        allowed = {s.value for s in NEXT_STATUSES[IssueStatus(current)]}

        for target in ALL_STATUSES:
            if target in allowed:
                continue
            refused = await move(client, dev, issue["id"], target)
            assert refused.status_code == 409, (current, target, refused.text)
            assert "allowed next statuses: " in refused.json()["detail"]
            for name in allowed:
                assert name in refused.json()["detail"]

        after = (await client.get(f"{ISSUES}/{issue['id']}", headers=dev.headers)).json()
        assert after["status"] == current

    async def test_assigned_needs_an_assignee(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)
        await move(client, dev, issue["id"], "triaged")

        refused = await move(client, dev, issue["id"], "assigned")

        assert refused.status_code == 409
        assert "assignee" in refused.json()["detail"]

    @pytest.mark.parametrize("assignee", ["rita", "ghost"])
    async def test_only_an_existing_developer_can_be_assigned(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, assignee: str
    ) -> None:
        issue = await file_issue(client, rita)

        refused = await client.patch(
            f"{ISSUES}/{issue['id']}", json={"assignee": assignee}, headers=dev.headers
        )

        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("assignee:")

    async def test_reporter_cannot_skip_triage(
        self, client: httpx.AsyncClient, rita: Account
    ) -> None:
        issue = await file_issue(client, rita)

        for status in ("triaged", "in_progress", "resolved", "closed"):
            refused = await move(client, rita, issue["id"], status)
            assert refused.status_code == 403

    async def test_reporter_verifies_their_resolved_issue(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)
        await walk_to(client, dev, issue["id"], "resolved")

        verified = await move(client, rita, issue["id"], "verified")
        closing = await move(client, rita, issue["id"], "closed")

        assert verified.status_code == 200
        assert closing.status_code == 403


class TestEarlyCloseAndDuplicates:
    async def test_closing_before_the_fix_needs_a_reason(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)

        missing = await move(client, dev, issue["id"], "closed")
        closed = await move(client, dev, issue["id"], "closed", resolution="wont_fix")

        assert missing.status_code == 422
        assert "wont_fix" in missing.json()["detail"]
        assert closed.status_code == 200
        assert closed.json()["resolution"] == "wont_fix"
        assert closed.json()["closed_at"] is not None

    async def test_duplicate_is_linked_both_ways(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        original = await file_issue(client, rita, title="Login page times out")
        copy = await file_issue(client, rita, title="Login times out again")

        no_original = await move(client, dev, copy["id"], "closed", resolution="duplicate")
        unknown = await move(
            client, dev, copy["id"], "closed", resolution="duplicate", duplicate_of=9999
        )
        itself = await move(
            client, dev, copy["id"], "closed", resolution="duplicate", duplicate_of=copy["id"]
        )
        closed = await move(
            client, dev, copy["id"], "closed", resolution="duplicate", duplicate_of=original["id"]
        )

        assert [no_original.status_code, unknown.status_code, itself.status_code] == [422] * 3
        assert closed.status_code == 200
        assert closed.json()["duplicate_of"] == original["id"]
        detail = (await client.get(f"{ISSUES}/{original['id']}", headers=dev.headers)).json()
        assert detail["duplicates"] == [copy["id"]]
        assert detail["history"][-1]["field"] == "duplicates"

    async def test_new_issue_lists_likely_duplicates_without_closing_anything(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        first = await file_issue(
            client,
            rita,
            title="CSV export fails for large reports",
            description="Exporting a report with 50k rows to CSV fails with a timeout.",
        )
        await file_issue(client, rita, title="Dark mode request", description="Please add it.")

        similar = await file_issue(
            client,
            dev,
            title="Large CSV export fails",
            description="CSV export of a big report fails with timeout.",
        )

        assert [c["id"] for c in similar["likely_duplicates"]] == [first["id"]]
        assert 0.3 <= similar["likely_duplicates"][0]["similarity"] <= 1
        assert similar["status"] == "open"


class TestReopen:
    @pytest.mark.parametrize("where", ["resolved", "verified", "closed"])
    async def test_reporter_reopens_and_it_is_counted(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, where: str
    ) -> None:
        issue = await file_issue(client, rita)
        await walk_to(client, dev, issue["id"], where)

        reopened = await move(client, rita, issue["id"], "open", comment="Still broken")

        assert reopened.status_code == 200
        assert reopened.json()["status"] == "open"
        assert reopened.json()["reopen_count"] == 1
        assert reopened.json()["resolution"] is None
        assert reopened.json()["resolved_at"] is None
