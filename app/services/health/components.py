"""Reading the components: where each stands now, and one component's history.

Where a component stands is its running state (``ComponentState``, kept by the ledger on
every report), so listing two thousand of them costs one indexed query and a page of rows,
problems first. A component's history is read from its own hourly rows (one per hour, by
the ``(component, hour)`` index) in buckets of an hour, or of a day for the ranges of a
month and more, with the same sums and sketches as the trend (``Tally``); its incidents
and newest checks come from their own indexes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.hours import HOUR, hour_floor
from app.db.models import ComponentState, HealthHour, HealthIncident, HealthResult
from app.db.models.health import OVERALL
from app.schemas.components import (
    CheckRead,
    ComponentHistory,
    ComponentPage,
    ComponentQuery,
    ComponentSummary,
    HistoryPoint,
    HistoryRange,
)
from app.schemas.health import Incident
from app.services.health.days import SUMMED
from app.services.health.trends import Tally
from app.vocabulary.health import ComponentStatus, worst_status

Bucket = Literal["hour", "day"]
RANGES: Final[dict[HistoryRange, tuple[timedelta, Bucket]]] = {
    HistoryRange.DAY: (timedelta(hours=24), "hour"),
    HistoryRange.WEEK: (timedelta(days=7), "hour"),
    HistoryRange.MONTH: (timedelta(days=30), "day"),
    HistoryRange.QUARTER: (timedelta(days=90), "day"),
}
RECENT_CHECKS: Final = 20
# Problems first: what is down, then slow, then unknown, then the healthy.
_PROBLEMS_FIRST = case(
    {
        ComponentStatus.UNHEALTHY.value: 0,
        ComponentStatus.DEGRADED.value: 1,
        ComponentStatus.UNKNOWN.value: 2,
    },
    value=ComponentState.status,
    else_=3,
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_components(session: AsyncSession, query: ComponentQuery) -> ComponentPage:
    """Where every component stands: counts by status, and a page of them, problems first."""
    real = ComponentState.component != OVERALL
    counted = await session.execute(
        select(
            ComponentState.status,
            func.count().label("components"),
            func.max(ComponentState.last_checked_at).label("newest"),
        )
        .where(real)
        .group_by(ComponentState.status)
    )
    counts = dict.fromkeys(ComponentStatus, 0)
    newest: datetime | None = None
    for status, components, last in counted:
        counts[status] = components
        newest = last if newest is None or last > newest else newest
    where = [real]
    if query.status is not None:
        where.append(ComponentState.status == query.status)
    if query.q:
        pattern = f"%{_escape_like(query.q)}%"
        where.append(ComponentState.component.ilike(pattern, escape="\\"))
    total = await session.scalar(select(func.count()).select_from(ComponentState).where(*where))
    rows = await session.scalars(
        select(ComponentState)
        .where(*where)
        .order_by(_PROBLEMS_FIRST, ComponentState.component)
        .limit(query.limit)
        .offset(query.offset)
    )
    present = [status for status, number in counts.items() if number]
    return ComponentPage(
        status=worst_status(present),
        counts=counts,
        last_checked_at=newest,
        total=total or 0,
        items=[_summary(row) for row in rows],
    )


def _summary(state: ComponentState) -> ComponentSummary:
    return ComponentSummary(
        name=state.component,
        kind=state.kind,
        status=state.status,
        since=state.since,
        last_checked_at=state.last_checked_at,
        last_latency_ms=state.last_latency_ms,
        last_message=state.last_message,
    )


def _bucket_start(hour: datetime, bucket: Bucket) -> datetime:
    return hour if bucket == "hour" else hour.replace(hour=0)


def _point(start: datetime, tally: Tally) -> HistoryPoint:
    p50, p95, p99 = tally.latency_histogram().quantiles((0.5, 0.95, 0.99))
    return HistoryPoint(
        start=start,
        checks=tally.checks,
        failures=tally.failures,
        uptime_percent=tally.uptime_percent,
        **tally.time_in_states(),
        latency_avg_ms=(
            round(tally.latency_sum_ms / tally.latency_count, 2) if tally.latency_count else None
        ),
        latency_p50_ms=None if p50 is None else round(p50, 2),
        latency_p95_ms=None if p95 is None else round(p95, 2),
        latency_p99_ms=None if p99 is None else round(p99, 2),
    )


async def component_history(
    session: AsyncSession, name: str, history_range: HistoryRange, *, now: datetime
) -> ComponentHistory:
    """One component over ``history_range`` up to ``now``; NotFound if it never reported."""
    state = await session.get(ComponentState, name)
    if state is None or name == OVERALL:
        raise NotFound(f"No component named {name!r} has reported")
    length, bucket = RANGES[history_range]
    start = hour_floor(now) + HOUR - length
    rows = await session.execute(
        select(
            HealthHour.hour,
            HealthHour.latency_sketch,
            *(getattr(HealthHour, column) for column in SUMMED),
        )
        .where(HealthHour.component == name, HealthHour.hour >= start, HealthHour.hour <= now)
        .order_by(HealthHour.hour)
    )
    buckets: dict[datetime, Tally] = defaultdict(Tally)
    whole = Tally()
    for row in rows:
        tally = buckets[_bucket_start(row.hour, bucket)]
        tally.add_sums(row)
        whole.add_sums(row)
        if row.latency_count:
            tally.sketches.append(row.latency_sketch)
    return ComponentHistory(
        component=_summary(state),
        range=history_range,
        bucket=bucket,
        window_start=start,
        window_end=now,
        uptime_percent=whole.uptime_percent,
        points=[_point(moment, tally) for moment, tally in buckets.items()],
        incidents=await _incidents(session, name, start, now),
        recent_checks=await _recent_checks(session, name),
    )


async def _incidents(
    session: AsyncSession, name: str, start: datetime, now: datetime
) -> list[Incident]:
    rows = await session.scalars(
        select(HealthIncident)
        .where(
            HealthIncident.component == name,
            HealthIncident.started_at <= now,
            or_(HealthIncident.ended_at.is_(None), HealthIncident.ended_at >= start),
        )
        .order_by(HealthIncident.started_at.desc())
    )
    return [
        Incident(
            component=row.component,
            started_at=row.started_at,
            ended_at=row.ended_at,
            duration_s=round(((row.ended_at or now) - row.started_at).total_seconds(), 1),
            message=row.message,
        )
        for row in rows
    ]


async def _recent_checks(session: AsyncSession, name: str) -> list[CheckRead]:
    rows = await session.scalars(
        select(HealthResult)
        .where(HealthResult.component == name)
        .order_by(HealthResult.checked_at.desc())
        .limit(RECENT_CHECKS)
    )
    return [CheckRead.model_validate(row) for row in rows]
