"""Searching issues by text: ``q`` finds a substring of the title or the description,
whatever its case, taken literally, however short; with the other filters, pages and the
rule of who sees what, on either store. The indexes of migrations 0009 and 0012 must not
change an answer: each case is checked against the plain rule ("the text, lower-cased, is
inside the title or the description, lower-cased"), and each total against the matches a
page lists."""

from __future__ import annotations

import httpx
import pytest

from tests.api.maintenance.conftest import ISSUES, Clock, file_issue, move
from tests.conftest import Account

# (title, description), filed in this order, an hour apart; rita files the first four.
REPORTS = (
    ("Export to CSV fails", "The exporter stops at 100% and shows an error."),
    ("Login page is slow", "Takes 5_000 ms on the 'login' form."),
    ("Crash on save", 'The "save" button crashes with a TypeError.'),
    ("Dark mode", "Please add a 100 percent dark theme."),
    ("Straße name rejected", "Ärger: the form refuses {title}: exp* and NEAR(a b)."),
    ("ab", "x"),
)
QUERIES = (
    "xport",  # inside a word
    "EXPORT",  # another case
    "CSV FAILS",  # across a space, another case
    "100%",  # LIKE's wildcard, taken literally
    "%",
    "5_000",  # LIKE's other wildcard
    "_",
    "'login'",  # quotes of either kind
    '"save"',
    'export" OR "crash',  # FTS5's syntax, taken literally
    "exp*",
    "{title}:",
    "NEAR(a b)",
    "e",  # shorter than a trigram
    "ab",
    "on s",
    "straße",  # non-ASCII, same case
    "no such text",
)


def plainly_matching(query: str) -> list[str]:
    """The rule, in Python: the titles holding ``query`` ignoring case, newest first."""
    needle = query.lower()
    found = [t for t, d in REPORTS if needle in t.lower() or needle in d.lower()]
    return list(reversed(found))


@pytest.fixture
async def desk(client: httpx.AsyncClient, rita: Account, una: Account, clock: Clock) -> list[int]:
    ids = []
    for number, (title, description) in enumerate(REPORTS):
        who = rita if number < 4 else una
        ids.append((await file_issue(client, who, title=title, description=description))["id"])
        clock.advance(hours=1)
    return ids


async def search(client: httpx.AsyncClient, who: Account, **params: str | int) -> dict[str, object]:
    response = await client.get(ISSUES, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def titles(page: dict[str, object]) -> list[str]:
    items = page["items"]
    assert isinstance(items, list)
    return [item["title"] for item in items]


@pytest.mark.usefixtures("desk")
class TestWhatMatches:
    @pytest.mark.parametrize("query", QUERIES)
    async def test_a_search_finds_what_the_plain_rule_finds(
        self, client: httpx.AsyncClient, dev: Account, query: str
    ) -> None:
        page = await search(client, dev, q=query)

        assert titles(page) == plainly_matching(query)
        assert page["total"] == len(plainly_matching(query))

    async def test_the_case_of_every_letter_is_folded_on_either_store(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        page = await search(client, dev, q="ärger")

        assert titles(page) == ["Straße name rejected"]

    async def test_below_a_trigram_sqlite_folds_ascii_letters_only(
        self, client: httpx.AsyncClient, dev: Account, backend: str
    ) -> None:
        # Too short for SQLite's trigram table: its own LIKE decides, and folds ASCII only.
        page = await search(client, dev, q="är")

        assert titles(page) == (["Straße name rejected"] if backend == "postgresql" else [])


class TestWithTheRestOfTheQuery:
    async def test_a_user_finds_only_their_own_issues(
        self, client: httpx.AsyncClient, una: Account, desk: list[int]
    ) -> None:
        assert titles(await search(client, una, q="e")) == ["Straße name rejected"]
        assert titles(await search(client, una, q="export")) == []

    async def test_filters_and_pages_apply_to_what_matches(
        self, client: httpx.AsyncClient, dev: Account, desk: list[int]
    ) -> None:
        await move(client, dev, desk[1], "triaged")

        triaged = await search(client, dev, q="slow", status="triaged")
        second_page = await search(client, dev, q="a", limit=2, offset=2)

        assert titles(triaged) == ["Login page is slow"]
        assert second_page["total"] == len(plainly_matching("a"))
        assert titles(second_page) == plainly_matching("a")[2:4]

    @pytest.mark.parametrize("query", ["the", "e"])
    async def test_a_page_past_the_last_still_tells_the_total(
        self, client: httpx.AsyncClient, dev: Account, desk: list[int], query: str
    ) -> None:
        page = await search(client, dev, q=query, offset=50)

        assert titles(page) == []
        assert page["total"] == len(plainly_matching(query)) > 0


class TestEditsAreFound:
    async def test_an_edited_title_is_found_by_its_new_words_only(
        self, client: httpx.AsyncClient, dev: Account, rita: Account
    ) -> None:
        issue = await file_issue(client, rita, title="Export fails", description="no file")
        edited = await client.patch(
            f"{ISSUES}/{issue['id']}",
            json={"title": "Import hangs", "description": "spinner forever"},
            headers=rita.headers,
        )
        assert edited.status_code == 200, edited.text

        assert titles(await search(client, dev, q="mport hang")) == ["Import hangs"]
        assert titles(await search(client, dev, q="spinner")) == ["Import hangs"]
        assert titles(await search(client, dev, q="xport")) == []
        assert titles(await search(client, dev, q="no file")) == []

    async def test_a_status_move_leaves_an_issue_findable(
        self, client: httpx.AsyncClient, dev: Account, rita: Account
    ) -> None:
        issue = await file_issue(client, rita, title="Export fails")
        await move(client, dev, issue["id"], "triaged")

        assert titles(await search(client, dev, q="xport fai")) == ["Export fails"]

    @pytest.mark.parametrize("narrowed", [{}, {"status": "open"}])
    async def test_sorted_by_update_the_issue_moved_last_comes_first(
        self,
        client: httpx.AsyncClient,
        dev: Account,
        rita: Account,
        clock: Clock,
        narrowed: dict[str, str],
    ) -> None:
        older = await file_issue(client, rita, title="Disk full on db-1")
        clock.advance(hours=1)
        await file_issue(client, rita, title="Disk full on db-2")
        clock.advance(hours=1)
        await client.patch(f"{ISSUES}/{older['id']}", json={"priority": "low"}, headers=dev.headers)

        # One a page: which issue makes the page is the search's own order, not the page's.
        latest = await search(client, dev, q="disk full", sort="-updated", limit=1, **narrowed)
        earliest = await search(client, dev, q="disk full", sort="updated", limit=1, **narrowed)

        assert (titles(latest), latest["total"]) == (["Disk full on db-1"], 2)
        assert (titles(earliest), earliest["total"]) == (["Disk full on db-2"], 2)


# A desk where one word is in half the titles and another in one: on SQLite the counts
# choose between looking the candidates up and meeting them along an index, so each
# search below is answered by one way or the other, and must not tell which.
CROWD = 40


@pytest.fixture
async def crowded_desk(
    client: httpx.AsyncClient, rita: Account, dev: Account, clock: Clock
) -> list[tuple[str, str]]:
    """(title, status) of each issue filed, oldest first; every third one triaged."""
    filed = []
    for number in range(CROWD):
        title = f"Report {number}: " + ("disk full" if number % 2 else "cpu high")
        if number == 7:
            title += ", kernel panic"
        issue = await file_issue(client, rita, title=title, description="seen in production")
        status = "open"
        if number % 3 == 0:
            await move(client, dev, issue["id"], "triaged")
            status = "triaged"
        filed.append((title, status))
        clock.advance(hours=1)
    return filed


class TestEveryWayOfFindingAnswersAlike:
    @pytest.mark.parametrize(
        ("params", "word", "status"),
        [
            ({"q": "disk", "limit": 1}, "disk", None),
            ({"q": "disk", "limit": 5, "offset": 5}, "disk", None),
            ({"q": "disk", "limit": 20, "offset": 10}, "disk", None),
            ({"q": "disk", "status": "triaged", "limit": 3}, "disk", "triaged"),
            ({"q": "kernel", "status": "open"}, "kernel", "open"),
            ({"q": "kernel", "status": "triaged"}, "kernel", "triaged"),
            ({"q": "production", "limit": 2, "offset": 30}, "production", None),
        ],
    )
    async def test_a_page_and_its_total_are_the_plain_rules(
        self,
        client: httpx.AsyncClient,
        dev: Account,
        crowded_desk: list[tuple[str, str]],
        params: dict[str, str | int],
        word: str,
        status: str | None,
    ) -> None:
        newest_first = [
            title
            for title, state in reversed(crowded_desk)
            if word in title.lower() + " seen in production" and status in (None, state)
        ]
        limit, offset = int(params.get("limit", 20)), int(params.get("offset", 0))

        page = await search(client, dev, **params)

        assert page["total"] == len(newest_first)
        assert titles(page) == newest_first[offset : offset + limit]

    async def test_sorted_by_priority_the_matches_are_all_there(
        self, client: httpx.AsyncClient, dev: Account, crowded_desk: list[tuple[str, str]]
    ) -> None:
        page = await search(client, dev, q="disk full", sort="priority", limit=100)

        assert sorted(titles(page)) == sorted(t for t, _ in crowded_desk if "disk full" in t)
