"""Two people moving one issue at the same moment: exactly one move applies."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.core.errors import Conflict
from app.db.models import User
from app.schemas.issues import StatusChange
from app.services.issues.issue_tracker import IssueTracker
from app.services.issues.sla import ResolutionTargets
from app.vocabulary.accounts import Role
from tests.api.maintenance.conftest import ISSUES, file_issue, move
from tests.conftest import Account, MakeAccount


def tracker_for(app, session) -> IssueTracker:
    hours = app.state.settings.issue_resolution_target_hours
    return IssueTracker(session, targets=ResolutionTargets(hours=hours))


class TestConcurrentStatusChanges:
    async def test_two_moves_from_the_same_status_never_both_apply(
        self, client: httpx.AsyncClient, rita: Account, dev: Account, make_account: MakeAccount
    ) -> None:
        other = await make_account("other-dev", Role.DEVELOPER)
        for _ in range(5):
            issue = await file_issue(client, rita)

            answers = await asyncio.gather(
                move(client, dev, issue["id"], "triaged"),
                move(client, other, issue["id"], "triaged"),
            )

            codes = sorted(a.status_code for a in answers)
            assert codes == [200, 409], [a.text for a in answers]
            detail = (await client.get(f"{ISSUES}/{issue['id']}", headers=dev.headers)).json()
            moves = [e for e in detail["history"] if e["field"] == "status"]
            assert len(moves) == 2  # reported + the one that won
            assert detail["status"] == moves[-1]["new_value"] == "triaged"

    async def test_a_move_based_on_a_stale_read_is_refused(
        self, app, client: httpx.AsyncClient, rita: Account, dev: Account
    ) -> None:
        """Both load the issue as open; the one who writes second must not apply."""
        issue = await file_issue(client, rita)
        store = app.state.store
        async with store.unit_of_work() as first, store.unit_of_work() as second:
            people = [await session.get_one(User, dev.id) for session in (first, second)]
            trackers = [tracker_for(app, session) for session in (first, second)]
            loaded = [await t.get(issue["id"], p) for t, p in zip(trackers, people, strict=True)]

            await trackers[0].change_status(loaded[0], StatusChange(status="triaged"), people[0])
            await first.commit()
            with pytest.raises(Conflict, match="changed status meanwhile"):
                await trackers[1].change_status(
                    loaded[1], StatusChange(status="closed", resolution="wont_fix"), people[1]
                )

        detail = (await client.get(f"{ISSUES}/{issue['id']}", headers=dev.headers)).json()
        assert detail["status"] == "triaged"
