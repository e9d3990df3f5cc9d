"""Writing request metrics: drained minutes as rows, hourly rollups and retention.

Rows are only ever inserted (see ``app.db.models.performance``). A rollup batch inserts
the hour rows and marks its minutes rolled up with ``WHERE rolled_up = false``; when
another process rolled some of them first, the row count differs and the batch is rolled
back, so concurrent rollups never count a minute twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, false, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from watchkeeper_agent.recorder import Exemplar, MinuteBucket

from app.core.hours import hour_floor
from app.db.models import IngestBatch, RequestHour, RequestMinute
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


async def roll_up(session: AsyncSession, *, before: datetime, exemplars: int) -> int:
    """Rolls one batch of minutes of complete hours before ``before`` into hour rows.

    Returns the minute rows rolled up (0 when none are left); raises :class:`RollupRace`
    when another process got to some of them first.
    """
    rows = (
        await session.execute(
            select(RequestMinute)
            .where(RequestMinute.rolled_up == false(), RequestMinute.minute < hour_floor(before))
            .order_by(RequestMinute.minute)
            .limit(BATCH)
        )
    ).scalars()
    groups: dict[tuple[Any, ...], list[RequestMinute]] = defaultdict(list)
    for row in rows:
        key = (hour_floor(row.minute), row.service, row.source, row.route, row.method)
        groups[(*key, row.status_class)].append(row)
    if not groups:
        return 0
    hours = []
    for (hour, service, source, route, method, klass), minutes in groups.items():
        hours.append(
            {
                "hour": hour,
                "service": service,
                "source": source,
                "route": route,
                "method": method,
                "status_class": klass,
                "count": sum(m.count for m in minutes),
                "sum_ms": sum(m.sum_ms for m in minutes),
                "max_ms": max(m.max_ms for m in minutes),
                "sketch": from_many_bytes([m.sketch for m in minutes]).to_bytes(),
                "exemplars": slowest((e for m in minutes for e in m.exemplars), exemplars),
            }
        )
    ids = [m.id for minutes in groups.values() for m in minutes]
    marked = 0
    for start in range(0, len(ids), 500):  # keeps every IN list within SQLite's limits
        chunk = ids[start : start + 500]
        result = await session.execute(
            update(RequestMinute)
            .where(RequestMinute.id.in_(chunk), RequestMinute.rolled_up == false())
            .values(rolled_up=True)
            .execution_options(synchronize_session=False)
        )
        marked += result.rowcount  # type: ignore[attr-defined]
    if marked != len(ids):
        raise RollupRace(f"{len(ids) - marked} of {len(ids)} minutes were rolled up elsewhere")
    await session.execute(insert(RequestHour), hours)
    return len(ids)


async def delete_expired(
    session: AsyncSession, *, minutes_before: datetime, hours_before: datetime
) -> int:
    """Deletes one batch of rolled-up minutes, of expired hours and of expired agent batch
    ids; returns rows deleted."""
    removed = 0
    minute_batch = (
        select(RequestMinute.id)
        .where(RequestMinute.rolled_up == true(), RequestMinute.minute < minutes_before)
        .limit(BATCH)
    )
    hour_batch = select(RequestHour.id).where(RequestHour.hour < hours_before).limit(BATCH)
    # A batch older than the retention could only be retried with minutes refused anyway.
    batch_ids = select(IngestBatch.id).where(IngestBatch.received_at < hours_before).limit(BATCH)
    # Bounded subqueries keep each transaction short on a large backlog.
    for statement in (
        delete(RequestMinute).where(RequestMinute.id.in_(minute_batch.scalar_subquery())),
        delete(RequestHour).where(RequestHour.id.in_(hour_batch.scalar_subquery())),
        delete(IngestBatch).where(IngestBatch.id.in_(batch_ids.scalar_subquery())),
    ):
        result = await session.execute(statement.execution_options(synchronize_session=False))
        removed += result.rowcount  # type: ignore[attr-defined]
    return removed
