"""Maintenance windows: whether one is open at a moment, for a component and a rule, from
the configuration and the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import MaintenanceWindow
from app.schemas.alerts import MaintenanceWindowCreate, Recurrence
from app.vocabulary.alerts import RuleName, rule_name


@dataclass(frozen=True)
class Window:
    """A window from the configuration or the store, in the shape the rules need."""

    id: int | None
    name: str
    starts_at: datetime | None
    ends_at: datetime | None
    recurrence: Recurrence | None
    components: tuple[str, ...]
    rules: tuple[RuleName, ...]
    ended_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        """Whether the window covers ``now`` (an ended window never does again)."""
        if self.ended_at is not None and self.ended_at <= now:
            return False
        if self.recurrence is not None:
            return _recurring_open(self.recurrence, now)
        assert self.starts_at is not None and self.ends_at is not None
        return self.starts_at <= now < self.ends_at

    def covers(self, component: str, rule: RuleName | None, now: datetime) -> bool:
        """Open now, and about this component and this rule (empty lists mean all)."""
        if not self.is_open(now):
            return False
        if self.components and component not in self.components:
            return False
        return not (self.rules and rule is not None and rule not in self.rules)


def _recurring_open(recurrence: Recurrence, now: datetime) -> bool:
    duration = timedelta(minutes=recurrence.duration_minutes)
    # A window that started on an earlier day may still be open (e.g. 23:00 for 3 h).
    for days_back in range(0, 8):
        day = (now - timedelta(days=days_back)).date()
        if day.weekday() not in recurrence.weekdays:
            continue
        start = datetime.combine(day, recurrence.start, tzinfo=now.tzinfo)
        if start <= now < start + duration:
            return True
    return False


def covering(
    windows: Sequence[Window], component: str, rule: RuleName | None, now: datetime
) -> Window | None:
    """The first window that silences ``rule`` on ``component`` now, if any."""
    return next((w for w in windows if w.covers(component, rule, now)), None)


def config_windows(configured: Sequence[MaintenanceWindowCreate]) -> list[Window]:
    """Windows written in the configuration (they have no id and cannot be ended)."""
    return [
        Window(
            None, w.name, w.starts_at, w.ends_at, w.recurrence, tuple(w.components), tuple(w.rules)
        )
        for w in configured
    ]


def stored_window(row: MaintenanceWindow) -> Window:
    recurrence = Recurrence.model_validate(row.recurrence) if row.recurrence else None
    return Window(
        row.id,
        row.name,
        row.starts_at,
        row.ends_at,
        recurrence,
        tuple(row.components),
        tuple(rule_name(rule) for rule in row.rules),
        row.ended_at,
    )


async def open_windows(
    session: AsyncSession, configured: Sequence[Window], now: datetime
) -> list[Window]:
    """Every window open at ``now``, from the configuration and the store."""
    rows = await session.scalars(
        select(MaintenanceWindow).where(MaintenanceWindow.ended_at.is_(None))
    )
    return [w for w in [*configured, *map(stored_window, rows)] if w.is_open(now)]


async def known_windows(session: AsyncSession, configured: Sequence[Window]) -> list[Window]:
    """Every window ever set, open or not: whether one covered a past moment is then
    ``covering(...)`` at that moment (history is judged by the windows of its time)."""
    rows = await session.scalars(select(MaintenanceWindow))
    return [*configured, *map(stored_window, rows)]
