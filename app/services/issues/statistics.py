"""Issue statistics, computed by the database: counts, durations, targets, backlog, weeks.

Every figure is an aggregate query over the filtered issues; Python only arranges the few
rows that come back. Median and p90 are ``percentile_cont``'s linear interpolation: read
by position along the duration's index (ORDER BY/OFFSET), or on PostgreSQL under a filter
by ``percentile_cont`` itself.

Over the whole desk (no filter), what an index holds by itself (issues created or resolved
each week, the backlog by age, open issues per assignee, the durations in order) is read
off that index, and only the rest needs a scan of every issue. A filter narrows the scan
to the rows it picks, and the scan counts everything: the indexes would then lead to
every row anyway, one lookup at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.models import Issue, User
from app.schemas.issues import (
    AssigneeLoad,
    DurationStats,
    IssueStatistics,
    ResolutionTargetStats,
    StatisticsQuery,
    WeekCount,
)
from app.schemas.users import UserRef
from app.services.issues.sla import AT_RISK_WINDOW, ResolutionTargets
from app.vocabulary.issues import (
    DONE_STATUSES,
    OPEN_STATUSES,
    UNRESOLVED_STATUSES,
    WORKING_STATUSES,
    IssueStatus,
    IssueType,
    Priority,
    Resolution,
)

WEEKS = 12
QUANTILES = (0.5, 0.9)
DURATIONS = (Issue.triage_seconds, Issue.first_response_seconds, Issue.resolution_seconds)
BACKLOG_AGES = (("< 1d", 1), ("1-7d", 7), ("7-30d", 30), ("> 30d", None))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _counted_alone(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many issues meet ``condition``, asked as a query of its own (an index's range)."""
    counted = select(func.count()).select_from(Issue).where(condition)
    return counted.correlate(None).scalar_subquery()


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 3)


def week_starts(now: datetime, weeks: int = WEEKS) -> list[datetime]:
    """Monday 00:00 UTC of the last ``weeks`` weeks, oldest first, this week last."""
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return [monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


class IssueStatisticsQuery:
    """One statistics request: the filters, the clock and the targets it is computed with."""

    def __init__(
        self,
        session: AsyncSession,
        query: StatisticsQuery,
        *,
        targets: ResolutionTargets,
        now: datetime,
    ) -> None:
        self.session = session
        self.targets = targets
        self.now = now
        self.where = self._filters(query)
        self.whole_desk = not self.where

    @staticmethod
    def _filters(query: StatisticsQuery) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if query.issue_type:
            where.append(Issue.issue_type == query.issue_type)
        if query.priority:
            where.append(Issue.priority == query.priority)
        if query.created_after:
            where.append(Issue.created_at >= query.created_after)
        if query.created_before:
            where.append(Issue.created_at < query.created_before)
        return where

    async def compute(self) -> IssueStatistics:
        """All the figures of ``GET /issues/statistics``: three queries over the issues."""
        counts = await self._counts()
        by_status = {
            s: sum(n for (st, _, _, _), n in counts.items() if st is s) for s in IssueStatus
        }
        figures = await self._figures()
        return IssueStatistics(
            total=sum(counts.values()),
            by_status=by_status,
            by_type={
                t: sum(n for (_, ty, _, _), n in counts.items() if ty is t) for t in IssueType
            },
            by_priority={
                p: sum(n for (_, _, pr, _), n in counts.items() if pr is p) for p in Priority
            },
            open=sum(by_status[s] for s in OPEN_STATUSES),
            in_progress=sum(by_status[s] for s in WORKING_STATUSES),
            resolved=sum(by_status[s] for s in DONE_STATUSES),
            time_to_triage_hours=await self._durations(figures, Issue.triage_seconds),
            time_to_first_response_hours=await self._durations(
                figures, Issue.first_response_seconds
            ),
            time_to_resolution_hours=await self._durations(figures, Issue.resolution_seconds),
            resolution_target=ResolutionTargetStats(
                target_hours=self.targets.hours,
                resolved=int(figures["resolved"]),
                within_target=int(figures["within"]),
                share=_ratio(figures["within"], figures["resolved"]),
            ),
            past_target=int(figures["past_target"]),
            at_risk=int(figures["at_risk"]),
            reopens=int(figures["reopens"]),
            reopen_rate=_ratio(figures["reopened"], figures["ever_resolved"]),
            verification_rejection_rate=_ratio(
                figures["rejections"], figures["rejections"] + figures["verifications"]
            ),
            close_reasons={
                r: sum(n for (_, _, _, res), n in counts.items() if res is r) for r in Resolution
            },
            backlog_by_age={label: int(figures[label]) for label, _ in BACKLOG_AGES},
            weekly=[
                WeekCount(
                    week_start=start,
                    created=int(figures[f"created_{i}"]),
                    resolved=int(figures[f"resolved_{i}"]),
                )
                for i, start in enumerate(week_starts(self.now))
            ],
            open_per_assignee=await self._open_per_assignee(),
        )

    async def _counts(
        self,
    ) -> dict[tuple[IssueStatus, IssueType, Priority, Resolution | None], int]:
        rows = await self.session.execute(
            select(Issue.status, Issue.issue_type, Issue.priority, Issue.resolution, func.count())
            .where(*self.where)
            .group_by(Issue.status, Issue.issue_type, Issue.priority, Issue.resolution)
        )
        return {(st, ty, pr, res): n for st, ty, pr, res, n in rows}

    async def _figures(self) -> dict[str, float]:
        """Every other aggregate in one scan of the filtered issues, keyed by label."""
        columns = [
            *self._outcome_columns(),
            *self._clock_columns(),
            *self._weekly_columns(),
            *self._duration_columns(),
        ]
        row = (await self.session.execute(select(*columns).where(*self.where))).one()
        return {key: float(value or 0) for key, value in row._mapping.items()}

    def _count(self, condition: ColumnElement[bool]) -> ColumnElement[int]:
        """How many of the filtered issues meet ``condition``: a query of its own over the
        whole desk, one more aggregate of the scan under a filter."""
        return _counted_alone(condition) if self.whole_desk else _count_if(condition)

    @staticmethod
    def _outcome_columns() -> list[ColumnElement[Any]]:
        return [
            _count_if(Issue.resolved_within_target.is_not(None)).label("resolved"),
            _count_if(Issue.resolved_within_target.is_(True)).label("within"),
            _count_if(Issue.reopen_count > 0).label("reopened"),
            func.coalesce(func.sum(Issue.reopen_count), 0).label("reopens"),
            func.coalesce(func.sum(Issue.verification_rejections), 0).label("rejections"),
            func.coalesce(func.sum(Issue.verification_count), 0).label("verifications"),
            _count_if(or_(Issue.resolution_seconds.is_not(None), Issue.reopen_count > 0)).label(
                "ever_resolved"
            ),
        ]

    def _clock_columns(self) -> list[ColumnElement[Any]]:
        now = self.now
        unresolved = Issue.status.in_(UNRESOLVED_STATUSES)
        running = Issue.waiting_since.is_(None)
        # A waiting issue's due time moves with the clock, so it is past target only if it
        # was already late when the wait began.
        past = or_(
            and_(running, Issue.sla_due_at < now),
            and_(Issue.waiting_since.is_not(None), Issue.waiting_since > Issue.sla_due_at),
        )
        at_risk = and_(running, Issue.sla_due_at >= now, Issue.sla_due_at <= now + AT_RISK_WINDOW)
        columns: list[ColumnElement[Any]] = [
            _count_if(and_(unresolved, past)).label("past_target"),
            _count_if(and_(unresolved, at_risk)).label("at_risk"),
        ]
        newer_than = now
        for label, days in BACKLOG_AGES:
            age = Issue.created_at <= newer_than
            if days is not None:
                boundary = now - timedelta(days=days)
                age = and_(age, Issue.created_at > boundary)
                newer_than = boundary
            columns.append(self._count(and_(unresolved, age)).label(label))
        return columns

    def _weekly_columns(self) -> list[ColumnElement[Any]]:
        starts = week_starts(self.now)
        bounds = [*starts, starts[-1] + timedelta(weeks=1)]
        columns: list[ColumnElement[Any]] = []
        for i, (start, end) in enumerate(itertools.pairwise(bounds)):
            created = and_(Issue.created_at >= start, Issue.created_at < end)
            resolved = and_(Issue.resolved_at >= start, Issue.resolved_at < end)
            columns.append(self._count(created).label(f"created_{i}"))
            columns.append(self._count(resolved).label(f"resolved_{i}"))
        return columns

    def _duration_columns(self) -> list[ColumnElement[Any]]:
        # Sorting every duration in the scan costs more than walking its index to two rows.
        sorted_in_scan = not self.whole_desk and (
            self.session.get_bind().dialect.name == "postgresql"
        )
        columns: list[ColumnElement[Any]] = []
        for column in DURATIONS:
            name = column.key
            columns += [
                func.count(column).label(f"{name}_n"),
                func.avg(column).label(f"{name}_avg"),
            ]
            if sorted_in_scan:
                columns += [
                    func.percentile_cont(q).within_group(column).label(f"{name}_q{q}")
                    for q in QUANTILES
                ]
        return columns

    async def _durations(
        self, figures: dict[str, float], column: InstrumentedAttribute[float | None]
    ) -> DurationStats:
        name = column.key
        count = int(figures[f"{name}_n"])
        if count and f"{name}_q{QUANTILES[0]}" not in figures:
            measured = [*self.where, column.is_not(None)]
            for q in QUANTILES:
                figures[f"{name}_q{q}"] = await self._interpolated(column, measured, count, q)
        median, p90 = (figures.get(f"{name}_q{q}") if count else None for q in QUANTILES)
        return DurationStats(
            count=count,
            avg=_hours(figures[f"{name}_avg"]) if count else None,
            median=_hours(median),
            p90=_hours(p90),
        )

    async def _interpolated(
        self,
        column: InstrumentedAttribute[float | None],
        where: Sequence[ColumnElement[bool]],
        count: int,
        quantile: float,
    ) -> float:
        """``percentile_cont`` by hand: the two neighbouring values, linearly interpolated."""
        position = quantile * (count - 1)
        below = math.floor(position)
        values = (
            await self.session.scalars(
                select(column).where(*where).order_by(column).offset(below).limit(2)
            )
        ).all()
        low = float(values[0] or 0.0)
        high = float(values[-1] or 0.0)
        return low + (high - low) * (position - below)

    async def _open_per_assignee(self) -> list[AssigneeLoad]:
        unresolved = [*self.where, Issue.status.in_(UNRESOLVED_STATUSES)]
        if self.whole_desk:
            # Counted on the (assignee, status) index alone, then the few people joined.
            per_assignee = (
                select(Issue.assignee_id, func.count().label("open"))
                .where(*unresolved)
                .group_by(Issue.assignee_id)
                .subquery()
            )
            counted = (
                select(User.id, User.username, per_assignee.c.open)
                .select_from(per_assignee)
                .outerjoin(User, User.id == per_assignee.c.assignee_id)
            )
            open_count: ColumnElement[int] = per_assignee.c.open
        else:
            # Grouped after the join: SQLite would otherwise walk the whole assignee index
            # in its order, looking every issue up, rather than take the filter's index.
            open_count = func.count(Issue.id)
            counted = (
                select(User.id, User.username, open_count)
                .select_from(Issue)
                .outerjoin(User, User.id == Issue.assignee_id)
                .where(*unresolved)
                .group_by(User.id, User.username)
            )
        rows = await self.session.execute(
            counted.order_by(open_count.desc(), User.username.asc().nulls_last())
        )
        return [
            AssigneeLoad(
                assignee=UserRef(id=uid, username=name) if uid is not None else None, open=n
            )
            for uid, name, n in rows
        ]
