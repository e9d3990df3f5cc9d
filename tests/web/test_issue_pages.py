"""The issue desk through its pages: report, list, move along the workflow with the buttons
the workflow allows, assign, label and comment — and what a user may not see or do."""

from __future__ import annotations

import re

import httpx

from app.services.issues import allowed_moves
from app.vocabulary.accounts import Role
from app.vocabulary.issues import IssueStatus
from tests.api.maintenance.conftest import ISSUES
from tests.conftest import Account
from tests.web.conftest import Browser

_MOVE = re.compile(
    r'<button type="submit" class="button[^"]*" name="status" value="(\w+)"( disabled)?'
)


def buttons(html: str) -> dict[str, bool]:
    """The move buttons of an issue page: target status, and whether it can be pressed."""
    return {status: not disabled for status, disabled in _MOVE.findall(html)}


async def report(browser: Browser, **fields: str) -> int:
    """Reports an issue through the form; the id the answer names."""
    defaults = {"title": "Export button does nothing", "issue_type": "bug", "priority": "high"}
    answer = await browser.post("/issues", **{**defaults, **fields})
    assert answer.status_code == 201, answer.text
    found = re.search(r"Issue #(\d+) reported", answer.text)
    assert found
    return int(found.group(1))


class TestReporting:
    async def test_a_report_through_the_form_is_filed_and_listed_as_mine(
        self, rita_browser: Browser, client: httpx.AsyncClient, rita: Account
    ) -> None:
        issue_id = await report(
            rita_browser, description="Nothing downloads.", labels="export, reports"
        )

        stored = (await client.get(f"{ISSUES}/{issue_id}", headers=rita.headers)).json()
        mine = await rita_browser.get("/issues")
        assert stored["title"] == "Export button does nothing"
        assert stored["labels"] == ["export", "reports"]
        assert stored["reporter"]["username"] == "rita"
        assert "Export button does nothing" in mine.text and "My issues" in mine.text

    async def test_a_form_with_a_mistake_is_a_page_naming_the_field(
        self, rita_browser: Browser
    ) -> None:
        answer = await rita_browser.post("/issues", title=" ", issue_type="bug")

        assert answer.status_code == 422
        assert "text/html" in answer.headers["content-type"]
        assert "title" in answer.text

    async def test_the_list_filters_and_pages(
        self, dana_browser: Browser, rita_browser: Browser
    ) -> None:
        for number in range(3):
            await report(rita_browser, title=f"Slow page {number}", priority="low")
        await report(rita_browser, title="Crash on save", priority="critical")

        low = await dana_browser.get("/issues?priority=low&limit=2&issue_type=&q=")
        second = await dana_browser.get("/issues?priority=low&limit=2&offset=2")

        assert low.status_code == 200
        assert "3 issues" in low.text and "Crash on save" not in low.text
        assert "1\u20132 of 3" in low.text and 'rel="next"' in low.text
        assert "3\u20133 of 3" in second.text and 'rel="prev"' in second.text


class TestWorkflowButtons:
    async def test_a_developer_moves_an_issue_through_every_status_with_the_buttons(
        self, dana_browser: Browser, rita_browser: Browser, client: httpx.AsyncClient, dana: Account
    ) -> None:
        issue_id = await report(rita_browser)
        page = f"/issues/{issue_id}"
        seen = [IssueStatus.OPEN]
        path = ["triaged", "assigned", "in_progress", "testing", "resolved", "verified", "closed"]
        for target in path:
            shown = buttons((await dana_browser.get(page)).text)
            current = seen[-1]
            expected = allowed_moves(current, role=Role.DEVELOPER, is_reporter=False)
            assert set(shown) == {s.value for s in expected}, current
            if target == "assigned":
                assert shown["assigned"] is False  # nobody to assign it to yet
                assigned = await dana_browser.post(
                    f"{page}/assignment", assignee="dana", labels="export"
                )
                assert assigned.status_code == 303
                assert buttons((await dana_browser.get(page)).text)["assigned"] is True
            moved = await dana_browser.post(f"{page}/status", status=target, comment="")
            assert moved.status_code == 303, moved.text
            seen.append(IssueStatus(target))

        stored = (await client.get(f"{ISSUES}/{issue_id}", headers=dana.headers)).json()
        assert stored["status"] == "closed" and stored["assignee"]["username"] == "dana"
        assert stored["labels"] == ["export"]
        history = [e["new_value"] for e in stored["history"] if e["field"] == "status"]
        assert history[-len(path) :] == path
        assert set(buttons((await dana_browser.get(page)).text)) == {"open"}

    async def test_the_reporter_sees_only_the_moves_a_reporter_may_make(
        self, dana_browser: Browser, rita_browser: Browser
    ) -> None:
        issue_id = await report(rita_browser)
        page = f"/issues/{issue_id}"
        assert buttons((await rita_browser.get(page)).text) == {}
        await dana_browser.post(f"{page}/assignment", assignee="dana", labels="")
        for status in ("triaged", "assigned", "in_progress", "testing", "resolved"):
            assert (await dana_browser.post(f"{page}/status", status=status)).status_code == 303

        shown = buttons((await rita_browser.get(page)).text)
        verified = await rita_browser.post(f"{page}/status", status="verified")

        assert shown == {"verified": True, "open": True}
        assert verified.status_code == 303

    async def test_a_forged_move_the_workflow_refuses_is_a_page_saying_why(
        self, rita_browser: Browser
    ) -> None:
        issue_id = await report(rita_browser)

        forged = await rita_browser.post(f"/issues/{issue_id}/status", status="triaged")

        assert forged.status_code == 403
        assert "Only developers may change this issue" in forged.text

    async def test_closing_straight_from_intake_asks_for_a_reason(
        self, dana_browser: Browser, rita_browser: Browser, client: httpx.AsyncClient, dana: Account
    ) -> None:
        issue_id = await report(rita_browser)
        page = (await dana_browser.get(f"/issues/{issue_id}")).text

        without = await dana_browser.post(f"/issues/{issue_id}/status", status="closed")
        closed = await dana_browser.post(
            f"/issues/{issue_id}/status", status="closed", resolution="wont_fix", duplicate_of=""
        )

        assert 'name="resolution"' in page and "wont_fix" in page
        assert without.status_code == 422 and "resolution" in without.text
        assert closed.status_code == 303
        stored = (await client.get(f"{ISSUES}/{issue_id}", headers=dana.headers)).json()
        assert (stored["status"], stored["resolution"]) == ("closed", "wont_fix")


class TestCommentsAndPrivacy:
    async def test_internal_comments_are_marked_for_staff_and_never_shown_to_the_reporter(
        self, dana_browser: Browser, rita_browser: Browser
    ) -> None:
        issue_id = await report(rita_browser)
        page = f"/issues/{issue_id}"
        await dana_browser.post(f"{page}/comments", body="Root cause: cache key", internal="true")
        await dana_browser.post(f"{page}/comments", body="We are on it")

        staff_view = (await dana_browser.get(page)).text
        reporter_view = (await rita_browser.get(page)).text

        assert "Root cause: cache key" in staff_view and "Internal</span>" in staff_view
        assert "We are on it" in reporter_view
        assert "Root cause: cache key" not in reporter_view
        assert 'name="internal"' not in reporter_view

    async def test_a_user_cannot_write_an_internal_comment_by_forging_the_form(
        self, rita_browser: Browser
    ) -> None:
        issue_id = await report(rita_browser)

        forged = await rita_browser.post(
            f"/issues/{issue_id}/comments", body="psst", internal="true"
        )

        assert forged.status_code == 403

    async def test_a_user_cannot_open_another_persons_issue(
        self, rita_browser: Browser, dana_browser: Browser
    ) -> None:
        theirs = await report(dana_browser, title="Staff-only incident")

        answer = await rita_browser.get(f"/issues/{theirs}")

        assert answer.status_code == 404
        assert "Staff-only incident" not in answer.text

    async def test_assignment_is_for_staff_only(self, rita_browser: Browser) -> None:
        issue_id = await report(rita_browser)

        forged = await rita_browser.post(f"/issues/{issue_id}/assignment", assignee="rita")

        assert forged.status_code == 403
