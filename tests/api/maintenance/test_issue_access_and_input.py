"""Who sees what on the desk, comments, and bad input that must change nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.api.maintenance.conftest import ISSUES, file_issue, move, walk_to
from tests.conftest import Account


async def issue_count(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> int:
    return int((await client.get(ISSUES, headers=admin_headers)).json()["total"])


class TestVisibility:
    async def test_another_users_issue_is_404_everywhere(
        self, client: httpx.AsyncClient, rita: Account, una: Account
    ) -> None:
        issue = await file_issue(client, rita)
        path = f"{ISSUES}/{issue['id']}"

        answers = [
            await client.get(path, headers=una.headers),
            await client.patch(path, json={"title": "mine now"}, headers=una.headers),
            await move(client, una, issue["id"], "verified"),
            await client.post(f"{path}/comments", json={"body": "hi"}, headers=una.headers),
        ]

        assert [a.status_code for a in answers] == [404] * 4
        assert all(a.json()["detail"] == f"No issue with id {issue['id']}" for a in answers)

    async def test_users_list_only_their_own_issues(
        self, client: httpx.AsyncClient, rita: Account, una: Account, dev: Account
    ) -> None:
        await file_issue(client, rita, title="Rita's problem")
        await file_issue(client, una, title="Una's problem")

        for_una = (await client.get(ISSUES, headers=una.headers)).json()
        sneaky = (await client.get(f"{ISSUES}?reporter=rita", headers=una.headers)).json()
        for_dev = (await client.get(ISSUES, headers=dev.headers)).json()

        assert [i["title"] for i in for_una["items"]] == ["Una's problem"]
        assert sneaky == {"items": [], "total": 0}
        assert for_dev["total"] == 2

    async def test_statistics_are_for_developers(
        self, client: httpx.AsyncClient, rita: Account
    ) -> None:
        response = await client.get(f"{ISSUES}/statistics", headers=rita.headers)

        assert response.status_code == 403

    async def test_reporter_edits_words_but_not_triage_fields(
        self, client: httpx.AsyncClient, rita: Account
    ) -> None:
        issue = await file_issue(client, rita)
        path = f"{ISSUES}/{issue['id']}"

        reworded = await client.patch(
            path, json={"title": "Export is broken"}, headers=rita.headers
        )
        escalated = await client.patch(path, json={"priority": "critical"}, headers=rita.headers)

        assert reworded.status_code == 200
        assert reworded.json()["title"] == "Export is broken"
        assert escalated.status_code == 403
        assert "priority" in escalated.json()["detail"]


class TestComments:
    async def test_internal_comments_are_never_shown_to_the_reporter(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)
        comments = f"{ISSUES}/{issue['id']}/comments"

        public = await client.post(comments, json={"body": "Looking **now**."}, headers=dev.headers)
        internal = await client.post(
            comments, json={"body": "Probably the S3 quota", "internal": True}, headers=dev.headers
        )
        by_rita = await client.post(
            comments, json={"body": "Psst", "internal": True}, headers=rita.headers
        )

        assert public.status_code == internal.status_code == 201
        assert internal.json()["internal"] is True
        assert internal.json()["author"] == {"id": dev.id, "username": "dev"}
        assert by_rita.status_code == 403
        seen_by_rita = (await client.get(f"{ISSUES}/{issue['id']}", headers=rita.headers)).json()
        seen_by_dev = (await client.get(f"{ISSUES}/{issue['id']}", headers=dev.headers)).json()
        assert [c["body"] for c in seen_by_rita["comments"]] == ["Looking **now**."]
        assert len(seen_by_dev["comments"]) == 2

    async def test_user_cannot_comment_on_a_closed_issue(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)
        await walk_to(client, dev, issue["id"], "closed")

        refused = await client.post(
            f"{ISSUES}/{issue['id']}/comments", json={"body": "Thanks!"}, headers=rita.headers
        )

        assert refused.status_code == 409
        assert "closed" in refused.json()["detail"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"title": "   ", "issue_type": "bug"}, "title"),
            ({"title": "x" * 201, "issue_type": "bug"}, "title"),
            ({"title": "ok", "issue_type": "bug", "description": "d" * 20_001}, "description"),
            ({"title": "ok", "issue_type": "complaint"}, "issue_type"),
            ({"title": "ok", "issue_type": "bug", "priority": "urgent"}, "priority"),
            ({"title": "ok", "issue_type": "bug", "severity": 3}, "severity"),
            ({"title": "ok"}, "issue_type"),
            ({"title": "ok", "issue_type": "bug", "labels": ["has space"]}, 0),
        ],
        ids=[
            "blank-title",
            "long-title",
            "long-description",
            "unknown-type",
            "unknown-priority",
            "unknown-field",
            "missing-type",
            "bad-label",
        ],
    )
    async def test_bad_issue_is_422_naming_the_field_and_writes_nothing(
        self, client: httpx.AsyncClient, rita: Account, admin_headers, body, field
    ) -> None:
        response = await client.post(ISSUES, json=body, headers=rita.headers)

        assert response.status_code == 422
        assert any(e["loc"][-1] == field for e in response.json()["detail"]), response.text
        assert await issue_count(client, admin_headers) == 0

    @pytest.mark.parametrize(
        ("path", "status"),
        [("/abc", 422), ("/0", 422), ("/999", 404), (f"/{2**40}", 422), ("/1.5", 422)],
    )
    async def test_bad_or_unknown_ids(
        self, client: httpx.AsyncClient, dev: Account, path: str, status: int
    ) -> None:
        response = await client.get(f"{ISSUES}{path}", headers=dev.headers)

        assert response.status_code == status

    async def test_oversize_comment_and_body(
        self, client: httpx.AsyncClient, rita: Account, admin_headers
    ) -> None:
        issue = await file_issue(client, rita)
        comments = f"{ISSUES}/{issue['id']}/comments"

        long = await client.post(comments, json={"body": "c" * 10_001}, headers=rita.headers)
        huge = await client.post(
            ISSUES,
            content=b'{"title": "' + b"t" * (1024 * 1024) + b'", "issue_type": "bug"}',
            headers={**rita.headers, "Content-Type": "application/json"},
        )

        assert long.status_code == 422
        assert huge.status_code == 413
        assert await issue_count(client, admin_headers) == 1
        detail = (await client.get(f"{ISSUES}/{issue['id']}", headers=rita.headers)).json()
        assert detail["comments"] == []

    async def test_refused_status_change_writes_nothing(
        self, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        issue = await file_issue(client, rita)

        refused = await move(
            client,
            dev,
            issue["id"],
            "closed",
            resolution="duplicate",
            duplicate_of=4242,
            comment="closing as dup",
        )

        assert refused.status_code == 422
        detail = (await client.get(f"{ISSUES}/{issue['id']}", headers=dev.headers)).json()
        assert detail["status"] == "open"
        assert detail["comments"] == []
        assert len(detail["history"]) == 1
