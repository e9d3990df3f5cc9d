"""People and a controllable clock for the issue desk's stories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.vocabulary.accounts import Role
from tests.conftest import Account, MakeAccount

ISSUES = "/api/v1/maintenance/issues"
# The path through the workflow, with the body of each step.
HAPPY_PATH = ("triaged", "assigned", "in_progress", "testing", "resolved", "verified", "closed")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    frozen = Clock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    app.state.clock = frozen
    return frozen


@pytest.fixture
async def rita(make_account: MakeAccount) -> Account:
    """A user who reports issues."""
    return await make_account("rita", Role.USER)


@pytest.fixture
async def una(make_account: MakeAccount) -> Account:
    """Another user, who must not see rita's issues."""
    return await make_account("una", Role.USER)


@pytest.fixture
async def dev(make_account: MakeAccount) -> Account:
    """A developer who works the desk."""
    return await make_account("dev", Role.DEVELOPER)


async def file_issue(client: httpx.AsyncClient, who: Account, **fields: Any) -> dict[str, Any]:
    """Reports an issue as ``who`` and returns what the desk answered."""
    body = {
        "title": "Export button does nothing",
        "description": "Clicking export on the report page shows no file.",
        "issue_type": "bug",
        "priority": "high",
        **fields,
    }
    response = await client.post(ISSUES, json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def move(
    client: httpx.AsyncClient, who: Account, issue_id: int, status: str, **extra: Any
) -> httpx.Response:
    """Asks the desk to move an issue to ``status``."""
    return await client.patch(
        f"{ISSUES}/{issue_id}/status", json={"status": status, **extra}, headers=who.headers
    )


async def walk_to(client: httpx.AsyncClient, dev: Account, issue_id: int, target: str) -> None:
    """Takes an open issue along the happy path up to ``target``, as a developer."""
    if target == "open":
        return
    for status in HAPPY_PATH:
        if status == "assigned":
            assigned = await client.patch(
                f"{ISSUES}/{issue_id}", json={"assignee": dev.username}, headers=dev.headers
            )
            assert assigned.status_code == 200, assigned.text
        response = await move(client, dev, issue_id, status)
        assert response.status_code == 200, response.text
        if status == target:
            return
