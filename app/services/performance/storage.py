"""Writing request metrics: drained minutes as rows, hourly and daily rollups, retention.

Rows are only ever inserted (see ``app.db.models.performance``). A rollup batch inserts
the hour rows and marks its minutes rolled up with ``WHERE rolled_up = false``; when
another process rolled some of them first, the row count differs and the batch is rolled
back, so concurrent rollups never count a minute twice. Hours roll up into days the same
way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import delete, false, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from watchkeeper_agent.recorder import Exemplar, MinuteBucket

from app.core.hours import DAY, day_floor, hour_floor
from app.db.models import IngestBatch, RequestDay, RequestHour, RequestMinute
from app.vocabulary.sketch import from_many_bytes

BATCH: Final = 5000


class RollupRace(Exception):
    """Another process rolled up some of the same minutes; this batch must be rolled back."""


def exemplar_json(exemplar: Exemplar) -> dict[str, Any]:
    """An exemplar as stored in the JSON column."""
    return {
        "duration_ms": round(exemplar.duration_ms, 3),
        "request_id": exemplar.request_id,
        "at": exemplar.at.isoformat(),
    }


async def write_minutes(
    session: AsyncSession, buckets: Sequence[MinuteBucket], *, process: str
) -> None:
    """Inserts one row per drained bucket, tagged with the writing process."""
    if not buckets:
        return
    await session.execute(
        insert(RequestMinute),
        [
            {
                "process": process,
                "minute": bucket.minute,
                "service": bucket.service,
                "source": bucket.source,
                "route": bucket.route,
                "method": bucket.method,
                "status_class": bucket.status_class,
                "count": bucket.count,
                "sum_ms": bucket.sum_ms,
                "max_ms": bucket.max_ms,
                "sketch": bucket.sketch.to_bytes(),
                "exemplars": [exemplar_json(e) for e in bucket.exemplars],
                "rolled_up": False,
            }
            for bucket in buckets
        ],
    )


def slowest(exemplars: Iterable[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The ``keep`` slowest exemplars, slowest first."""
    return sorted(exemplars, key=lambda e: float(e["duration_ms"]), reverse=True)[:keep]


@dataclass(frozen=True)
class Grain:
    """One rollup: the rows of a finer grain folded into rows of a coarser one."""

    rows: type[RequestMinute] | type[RequestHour]
    at: str  # the time column of ``rows``
    into: type[RequestHour] | type[RequestDay]
    into_at: str  # the time column of ``into``
    floor: Callable[[datetime], datetime]


MINUTES_INTO_HOURS: Final = Grain(RequestMinute, "minute", RequestHour, "hour", hour_floor)
HOURS_INTO_DAYS: Final = Grain(RequestHour, "hour", RequestDay, "day", day_floor)


async def roll_up(
    session: AsyncSession, *, before: datetime, exemplars: int, grain: Grain = MINUTES_INTO_HOURS
) -> int:
    """Rolls one batch of rows of complete periods before ``before`` (hours of minutes, or
    days of hours) into rows of the coarser grain.

    Returns the rows rolled up (0 when none are left); raises :class:`RollupRace` when
    another process got to some of them first.
    """
    table, at = grain.rows, getattr(grain.rows, grain.at)
    found = await session.execute(
        select(table)
        .where(table.rolled_up == false(), at < grain.floor(before))
        .order_by(at)
        .limit(BATCH)
    )
    # select() of a union of tables is typed by their common base; the rows are ``table``'s.
    rows = cast(Sequence[RequestMinute | RequestHour], found.scalars().all())
    groups: dict[tuple[Any, ...], list[RequestMinute | RequestHour]] = defaultdict(list)
    for row in rows:
        key = (grain.floor(getattr(row, grain.at)), row.service, row.source, row.route)
        groups[(*key, row.method, row.status_class)].append(row)
    if not groups:
        return 0
    merged = []
    for (period, service, source, route, method, klass), parts in groups.items():
        merged.append(
            {
                grain.into_at: period,
                "service": service,
                "source": source,
                "route": route,
                "method": method,
                "status_class": klass,
                "count": sum(m.count for m in parts),
                "sum_ms": sum(m.sum_ms for m in parts),
                "max_ms": max(m.max_ms for m in parts),
                "sketch": from_many_bytes([m.sketch for m in parts]).to_bytes(),
                "exemplars": slowest((e for m in parts for e in m.exemplars), exemplars),
            }
        )
    ids = [m.id for parts in groups.values() for m in parts]
    marked = 0
    for start in range(0, len(ids), 500):  # keeps every IN list within SQLite's limits
        chunk = ids[start : start + 500]
        result = await session.execute(
            update(table)
            .where(table.id.in_(chunk), table.rolled_up == false())
            .values(rolled_up=True)
            .execution_options(synchronize_session=False)
        )
        marked += result.rowcount  # type: ignore[attr-defined]
    if marked != len(ids):
        raise RollupRace(f"{len(ids) - marked} of {len(ids)} rows were rolled up elsewhere")
    await session.execute(insert(grain.into), merged)
    return len(ids)


async def delete_expired(
    session: AsyncSession, *, minutes_before: datetime, hours_before: datetime
) -> int:
    """Deletes one batch of rolled-up minutes, of expired hours and days and of expired
    agent batch ids; returns rows deleted."""
    removed = 0
    minute_batch = (
        select(RequestMinute.id)
        .where(RequestMinute.rolled_up == true(), RequestMinute.minute < minutes_before)
        .limit(BATCH)
    )
    hour_batch = select(RequestHour.id).where(RequestHour.hour < hours_before).limit(BATCH)
    # A day goes once all of it is past the retention, as its last hour does.
    day_batch = select(RequestDay.id).where(RequestDay.day < hours_before - DAY).limit(BATCH)
    # A batch older than the retention could only be retried with minutes refused anyway.
    batch_ids = select(IngestBatch.id).where(IngestBatch.received_at < hours_before).limit(BATCH)
    # Bounded subqueries keep each transaction short on a large backlog.
    for statement in (
        delete(RequestMinute).where(RequestMinute.id.in_(minute_batch.scalar_subquery())),
        delete(RequestHour).where(RequestHour.id.in_(hour_batch.scalar_subquery())),
        delete(RequestDay).where(RequestDay.id.in_(day_batch.scalar_subquery())),
        delete(IngestBatch).where(IngestBatch.id.in_(batch_ids.scalar_subquery())),
    ):
        result = await session.execute(statement.execution_options(synchronize_session=False))
        removed += result.rowcount  # type: ignore[attr-defined]
    return removed
