"""The dashboard in a real headless Chromium: signing in, the overview against the API,
reporting an issue and walking it through the workflow with the buttons, what a user may
not see, forged posts, accessibility (axe-core) and page weight — on one seeded store."""

from __future__ import annotations

import re
from typing import Final

import pytest
from playwright.sync_api import Response, expect

from app.web.templating import count, milliseconds, share
from tests.web.conftest import AXE, Dashboard, MeetPerson, Person
from tests.web.seed import DEVELOPER, REPORTER

WEIGHT_LIMIT: Final = 300_000
AXE_PATH: Final = "/test-only/axe.min.js"
# What a page weighs: its HTML, scripts, stylesheets and the fragments htmx pulls in.
PAGE_PARTS: Final = frozenset({"document", "script", "stylesheet", "fetch", "xhr"})
REFRESH_DEADLINE_MS: Final = 15_000
# axe-core's serious and critical findings on the page, each with where it found them.
SERIOUS_VIOLATIONS: Final = """async () => {
  const found = await axe.run(document, {resultTypes: ["violations"]});
  return found.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""
STAFF_PAGES: Final = (
    "/",
    "/components/search?range=7d",
    "/performance",
    "/performance?service=shop&sort=p95_ms&order=desc",
    "/performance/insights?service=shop",
    "/issues",
    "/issues/1",
    "/issues/new",
    "/alerts",
)
USER_PAGES: Final = ("/issues", "/issues/1", "/issues/new")


def shows_status(person: Person, status: str) -> None:
    """The issue page (once it has loaded after a button) names ``status`` in its heading."""
    expect(person.page.locator(".page-head .tag").first).to_have_text(status)


class TestSigningIn:
    def test_a_visit_signs_in_lands_on_the_overview_and_signs_out(self, meet: MeetPerson) -> None:
        dana = meet()

        dana.visit("/performance")
        assert dana.page.url.endswith("/login?next=/performance")
        dana.page.get_by_label("Username").fill(DEVELOPER)
        dana.page.get_by_label("Password").fill("correct horse battery")
        dana.page.get_by_role("button", name="Sign in").click()
        expect(dana.page.get_by_role("heading", name="Performance")).to_be_visible()

        dana.page.get_by_role("button", name="Sign out").click()
        expect(dana.page.get_by_role("button", name="Sign in")).to_be_visible()
        dana.visit("/issues")
        assert "/login" in dana.page.url


def overview_matches_the_api(dana: Person, dashboard: Dashboard) -> None:
    """Every figure of the overview is the API's, formatted as the page formats it."""

    def figure(name: str) -> str:
        return dana.page.locator(f'[data-figure="{name}"]').first.inner_text()

    for service in ("shop", "payments", "catalog"):
        api = dashboard.api(f"/api/v1/maintenance/performance/analysis?hours=1&service={service}")
        overall = api["overall"]
        assert figure(f"{service}.p95_ms").startswith(milliseconds(overall["p95_ms"]))
        assert figure(f"{service}.p99_ms").startswith(milliseconds(overall["p99_ms"]))
        assert figure(f"{service}.median_ms").startswith(milliseconds(overall["median_ms"]))
        assert figure(f"{service}.avg_ms").startswith(milliseconds(overall["avg_ms"]))
        assert figure(f"{service}.error_rate").startswith(share(overall["error_rate"]))
        assert figure(f"{service}.requests_per_minute").startswith(
            count(overall["requests_per_minute"])
        )
    stats = dashboard.api("/api/v1/maintenance/issues/statistics")
    for key in ("open", "in_progress", "resolved", "past_target", "at_risk"):
        assert figure(f"issues.{key}") == count(stats[key])
    listed = dashboard.api("/api/v1/maintenance/components?limit=25")
    banner = dana.page.get_by_role("status").first.inner_text()
    assert f"Something is down: {listed['counts']['unhealthy']} component" in banner
    slo = dashboard.api("/api/v1/maintenance/slo")
    for criterion in slo["criteria"]:
        measured = criterion["measured"]
        expected = "—" if measured is None else str(round(measured, 3))
        assert figure(f"slo.{criterion['name']}").startswith(expected)


class TestOverview:
    def test_it_shows_the_api_figures_and_refreshes_them_without_a_reload(
        self, meet: MeetPerson, dashboard: Dashboard
    ) -> None:
        dana = meet(DEVELOPER)
        dana.visit("/")
        overview_matches_the_api(dana, dashboard)
        dana.page.evaluate("window.stillTheSamePage = true")

        with dana.page.expect_response(
            lambda answer: "/overview/live" in answer.url, timeout=REFRESH_DEADLINE_MS
        ) as refresh:
            pass

        assert refresh.value.status == 200
        dana.settle()
        assert dana.page.evaluate("window.stillTheSamePage") is True
        overview_matches_the_api(dana, dashboard)


class TestTheIssueDesk:
    def test_an_issue_is_reported_and_moved_through_every_status_with_the_buttons(
        self, meet: MeetPerson
    ) -> None:
        rita, dana = meet(REPORTER), meet(DEVELOPER)
        rita.visit("/issues/new")
        rita.page.get_by_label("Title").fill("Receipts are emailed twice")
        rita.page.get_by_label("Description").fill("Every order sends two receipt emails.")
        rita.page.get_by_label("Type").select_option("bug")
        rita.page.get_by_label("Priority").select_option("high")
        rita.page.get_by_role("button", name="Report the issue").click()
        expect(
            rita.page.get_by_role("heading", name=re.compile(r"Issue #\d+ reported"))
        ).to_be_visible()
        rita.page.get_by_role("link", name="Open the issue").click()
        issue = rita.page.url.removeprefix(rita.dashboard.url)
        shows_status(rita, "open")

        dana.visit(issue)
        for button, status in (("Move to triaged", "triaged"),):
            dana.page.get_by_role("button", name=button).click()
            shows_status(dana, status)
        expect(dana.page.get_by_role("button", name="Move to assigned")).to_be_disabled()
        dana.page.get_by_label("Assignee").select_option(DEVELOPER)
        dana.page.get_by_role("textbox", name="Labels (separated by commas)").fill("email, billing")
        dana.page.get_by_role("button", name="Save").click()
        for status in ("assigned", "in progress", "testing", "resolved"):
            dana.page.get_by_role("button", name=f"Move to {status}").click()
            shows_status(dana, status)
        expect(dana.page.get_by_role("button", name="Move to verified")).to_be_visible()

        rita.visit(issue)
        assert rita.page.get_by_role("group", name="Move to").get_by_role(
            "button"
        ).all_inner_texts() == [
            "Move to verified",
            "Reopen",
        ]
        rita.page.get_by_role("button", name="Move to verified").click()
        shows_status(rita, "verified")

        dana.visit(issue)
        dana.page.get_by_role("button", name="Move to closed").click()
        shows_status(dana, "closed")
        dana.page.get_by_role("button", name="Reopen").click()
        shows_status(dana, "open")
        history = dana.page.locator(".history").inner_text()
        for step in (
            "triaged",
            "assigned",
            "in_progress",
            "testing",
            "resolved",
            "verified",
            "closed",
        ):
            assert f"→ {step}" in history

    def test_a_user_sees_no_staff_page_and_no_internal_comment(self, meet: MeetPerson) -> None:
        rita = meet(REPORTER)

        assert rita.visit("/") == 200 and rita.page.url.endswith("/issues")
        nav = rita.page.get_by_role("navigation", name="Main").get_by_role("listitem")
        assert nav.all_inner_texts() == ["Report an issue", "My issues"]
        for path in ("/performance", "/alerts", "/components/search", "/performance/insights"):
            assert rita.visit(path) == 403, path
            expect(rita.page.get_by_role("alert")).to_contain_text("for developers and admins")
        rita.visit("/issues/1")  # hers, with an internal note from the developer
        expect(rita.page.get_by_role("heading", name=re.compile("Checkout button"))).to_be_visible()
        assert "Looking into it" not in rita.page.content()
        assert rita.page.locator(".tag-internal").count() == 0

    def test_form_posts_without_the_csrf_token_are_refused(self, meet: MeetPerson) -> None:
        rita = meet(REPORTER)
        rita.visit("/issues/new")
        url = rita.dashboard.url

        forged = rita.context.request.post(
            f"{url}/issues", form={"title": "Forged", "issue_type": "bug"}, max_redirects=0
        )
        out = rita.context.request.post(f"{url}/logout", form={}, max_redirects=0)

        assert forged.status == 403 and out.status == 403
        rita.visit("/issues")
        assert "Forged" not in rita.page.content()


class TestEveryPage:
    @pytest.mark.parametrize(
        ("who", "paths"),
        [(DEVELOPER, STAFF_PAGES), (REPORTER, USER_PAGES), (None, ("/login", "/status"))],
    )
    def test_it_is_accessible_light_and_runs_without_errors(
        self, meet: MeetPerson, who: str | None, paths: tuple[str, ...]
    ) -> None:
        person = meet(who)
        answers: list[Response] = []
        person.page.on("response", lambda answer: answers.append(answer))
        # axe-core comes from this site's address, so the pages' own CSP lets it in.
        person.context.route(
            f"{person.dashboard.url}{AXE_PATH}", lambda route: route.fulfill(path=AXE)
        )
        violations, weights = {}, {}
        for path in paths:
            answers.clear()
            person.visit(path)
            weights[path] = sum(
                len(answer.body())
                for answer in answers
                if answer.ok and answer.request.resource_type in PAGE_PARTS
            )
            person.page.add_script_tag(url=AXE_PATH)
            found = person.page.evaluate(SERIOUS_VIOLATIONS)
            if found:
                violations[path] = found

        assert violations == {}
        assert max(weights.values()) < WEIGHT_LIMIT, weights
        assert person.problems == []  # no script error, no CSP violation

    def test_the_charts_are_drawn(self, meet: MeetPerson) -> None:
        dana = meet(DEVELOPER)

        dana.visit("/components/search?range=30d")

        expect(dana.page.locator("#latency canvas")).to_have_count(1)
        assert dana.problems == []
