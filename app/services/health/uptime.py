"""Daily uptime: the bars under each component, one per UTC day, the current day included.

The store sums each component's hourly rollups per day (2,000 components over 90 days is
millions of hours, far too many to bring back), and each day's sums become a ``Tally`` so
that a bar's figure is the very uptime the trends report: up (healthy or degraded) over up
plus down, time under maintenance or in an unknown status left out. A day with no judged
time has no figure. The stretch since a component's last report is in no rollup yet: a bar
counts the time up to the last report, at most one monitor interval short of ``now``.
``period_uptime`` is the same days as one figure per component (a badge's 30 days).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Select, cast, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db.models import HealthHour
from app.services.health.days import SUMMED
from app.services.health.trends import Tally

DAY = timedelta(days=1)


@dataclass(frozen=True)
class DailyUptime:
    """One day of one component: its uptime in percent, or None when nothing was judged."""

    day: date
    uptime: float | None


def _utc_day(session: AsyncSession) -> ColumnElement[date]:
    """The UTC date of an hourly row, in the store's own words."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", HealthHour.hour), Date)
    # SQLite keeps the UTC time as ISO text; its date() is the day, parsed back as a date.
    return type_coerce(func.date(HealthHour.hour), Date)


async def daily_uptime(
    session: AsyncSession,
    *,
    days: int,
    now: datetime,
    components: Sequence[str] | None = None,
) -> dict[str, list[DailyUptime]]:
    """The last ``days`` UTC days of uptime per component, oldest first, ending on ``now``'s
    day; every component asked for gets ``days`` entries, one with no history all None.
    Without ``components``, every component with a rollup in the window (the overall
    status, ``OVERALL``, among them)."""
    first_day = _first_day(days, now)
    day = _utc_day(session).label("day")
    tallies: dict[str, dict[date, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for row in await session.execute(_sums(first_day, now, components, day)):
        tallies[row.component][row.day].add_sums(row)
    calendar = [first_day + offset * DAY for offset in range(days)]
    return {
        name: [DailyUptime(day=each, uptime=_uptime(tallies[name].get(each))) for each in calendar]
        for name in _names(tallies, components)
    }


async def period_uptime(
    session: AsyncSession,
    *,
    days: int,
    now: datetime,
    components: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """The uptime of the same ``days`` UTC days as ``daily_uptime``'s bars, as one figure
    per component (the days' time summed, not their percentages averaged)."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for row in await session.execute(_sums(_first_day(days, now), now, components)):
        tallies[row.component].add_sums(row)
    return {name: _uptime(tallies.get(name)) for name in _names(tallies, components)}


def _first_day(days: int, now: datetime) -> date:
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return now.astimezone(UTC).date() - (days - 1) * DAY


def _sums(
    first_day: date,
    now: datetime,
    components: Sequence[str] | None,
    *by: ColumnElement[date],
) -> Select[*tuple[Any, ...]]:
    """Each component's summed rollups from ``first_day`` to ``now``, grouped ``by`` more."""
    query = (
        select(
            HealthHour.component,
            *by,
            *(func.sum(getattr(HealthHour, column)).label(column) for column in SUMMED),
        )
        .where(
            HealthHour.hour >= datetime.combine(first_day, time(), UTC),
            HealthHour.hour <= now,
        )
        .group_by(HealthHour.component, *by)
    )
    if components is not None:
        query = query.where(HealthHour.component.in_(set(components)))
    return query


def _names(found: Mapping[str, object], components: Sequence[str] | None) -> list[str]:
    return list(found) if components is None else list(dict.fromkeys(components))


def _uptime(tally: Tally | None) -> float | None:
    return None if tally is None else tally.uptime_percent
