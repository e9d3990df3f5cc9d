"""The README's pictures of the dashboard: ``make screenshots`` takes them from the seeded
store of the browser stories (``WATCHKEEPER_SCREENSHOTS=1``; skipped in the test run)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pytest

from tests.web.conftest import MeetPerson
from tests.web.seed import DEVELOPER

SHOTS: Final = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    not os.environ.get("WATCHKEEPER_SCREENSHOTS"),
    reason="`make screenshots` takes the README's pictures",
)


def test_the_overview(meet: MeetPerson) -> None:
    dana = meet(DEVELOPER)
    SHOTS.mkdir(parents=True, exist_ok=True)

    assert dana.visit("/") == 200
    dana.page.screenshot(path=SHOTS / "overview.png", full_page=True)

    assert (SHOTS / "overview.png").stat().st_size > 10_000


def test_the_status_page(meet: MeetPerson) -> None:
    visitor = meet()
    SHOTS.mkdir(parents=True, exist_ok=True)

    assert visitor.visit("/status") == 200
    visitor.page.screenshot(path=SHOTS / "status.png", full_page=True)

    assert (SHOTS / "status.png").stat().st_size > 10_000
