"""Two processes that see a component for the first time at once both keep their report.

Each is a store (an engine) of its own on the same database. The second reads "no state
yet" while the first's new row is written but not committed, then writes its own first
state: it must wait for the first and apply its report to the first's row, not fail on
the duplicate (which lost the whole sweep of one of them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from app.db.models import ComponentState, HealthHour
from app.db.store import Store
from app.services.health.history import HealthLedger, Observation
from app.vocabulary.health import ComponentKind, ComponentStatus
from tests.faults.deadlines import RECOVERY_DEADLINE, within

T0 = datetime(2026, 11, 2, 9, 10, tzinfo=UTC)
MAX_GAP = timedelta(minutes=2)


def seen(at: datetime) -> Observation:
    return Observation("payments", ComponentKind.HTTP, ComponentStatus.HEALTHY, at, 10.0, "ok")


@pytest.fixture
async def processes(store_url: str) -> AsyncIterator[tuple[Store, Store]]:
    first, second = Store(store_url), Store(store_url)
    yield first, second
    await first.dispose()
    await second.dispose()


def on_first_write(store: Store) -> asyncio.Event:
    """Set when ``store`` sends its first INSERT or UPDATE."""
    writing = asyncio.Event()

    def notice(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writing.set()  # SQLAlchemy's sync layer runs on the event loop's thread

    event.listen(store.engine.sync_engine, "before_cursor_execute", notice)
    return writing


async def observe(store: Store, observation: Observation) -> None:
    async with store.unit_of_work() as session:
        await HealthLedger(session, max_gap=MAX_GAP).observe(observation)


async def test_both_first_reports_of_a_new_component_are_kept(
    processes: tuple[Store, Store],
) -> None:
    first, second = processes
    second_writes = on_first_write(second)

    async with first.unit_of_work() as session:
        await HealthLedger(session, max_gap=MAX_GAP).observe(seen(T0))
        await session.flush()  # the first state is written, not yet committed
        late = asyncio.create_task(observe(second, seen(T0 + timedelta(seconds=30))))
        await within(RECOVERY_DEADLINE, second_writes.wait(), "the second process's write")
    await within(RECOVERY_DEADLINE, late, "the second process's report")

    async with first.sessions() as session:
        state = await session.scalar(select(ComponentState))
        hour = await session.scalar(select(HealthHour))
    assert state is not None and hour is not None
    assert state.last_checked_at == T0 + timedelta(seconds=30)
    assert hour.checks == 2
    assert hour.healthy_s == 30.0  # the time between the two reports, credited once
