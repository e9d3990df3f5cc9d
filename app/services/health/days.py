"""Health days: the hour rows of complete days rolled up, and reads of hours and days together.

A month of 22 components is ~16,000 hour rows, which the store sums at a few microseconds
each; as days it is ~660. An hour stays in its table once rolled up (hourly series read
it), marked ``rolled_up``, and whoever reads whole days reads the day row in its place.

The mark is what makes this safe with several processes: a rollup claims its hours with
``UPDATE … SET rolled_up = true WHERE rolled_up = false … RETURNING`` (two rollups never
return the same hour, so no hour is counted twice; a day rolled in two batches has two
rows, which readers add up), and the ledger locks an hour row before it changes it. A
report may still change an hour of a rolled day (credit runs up to ``max_gap`` after a
report, and a component silent for days credits its last hour late): the ledger then
reopens that component's day, deleting its day rows and unmarking its hours, all in its
own transaction, and a later rollup rolls the day again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    delete,
    false,
    insert,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.hours import DAY, day_ceil, day_floor
from app.db.base import UTCDateTime
from app.db.models import HealthDay, HealthHour
from app.vocabulary.sketch import from_many_bytes

# The columns a day row holds as the sum of its hours'.
SUMMED: Final = (
    "healthy_s",
    "degraded_s",
    "unhealthy_s",
    "unknown_s",
    "maintenance_s",
    "checks",
    "failures",
    "status_changes",
    "latency_sum_ms",
    "latency_count",
)
BATCH: Final = 5000

# Conditions on a row's time and component: the hour's, or the day's (its midnight).
Where = Callable[[Any, Any], Sequence[ColumnElement[bool]]]
# The statement reading a table of sums by its time column.
Read = Callable[[type[HealthHour] | type[HealthDay], Any], Select[*tuple[Any, ...]]]


async def roll_up(session: AsyncSession, *, before: datetime, since: datetime) -> int:
    """Rolls one batch of the hours of complete days from ``since`` up to (not including)
    ``before``'s day into day rows; returns the hours rolled (0 once none are left).

    A day ``since`` cuts is left as hours: retention is deleting its first hours, and a day
    row could not lose them."""
    claim = (
        select(HealthHour.id)
        .where(
            HealthHour.rolled_up == false(),
            HealthHour.hour >= day_ceil(since),
            HealthHour.hour < day_floor(before),
        )
        .order_by(HealthHour.hour)
        .limit(BATCH)
        # An hour a ledger is changing is left for the next rollup: waiting for it while
        # holding the batch could deadlock with that ledger reopening the day.
        .with_for_update(skip_locked=True)
    )
    claimed = await session.execute(
        update(HealthHour)
        .where(HealthHour.id.in_(claim.scalar_subquery()), HealthHour.rolled_up == false())
        .values(rolled_up=True)
        .returning(
            HealthHour.component,
            HealthHour.kind,
            HealthHour.hour,
            HealthHour.latency_sketch,
            *(getattr(HealthHour, column) for column in SUMMED),
        )
        .execution_options(synchronize_session=False)
    )
    days: dict[tuple[str, datetime], list[Any]] = defaultdict(list)
    rows = claimed.all()
    for row in rows:
        days[(row.component, day_floor(row.hour))].append(row)
    if days:
        await session.execute(
            insert(HealthDay),
            [_day_row(component, day, hours) for (component, day), hours in days.items()],
        )
    return len(rows)


def _day_row(component: str, day: datetime, hours: Sequence[Any]) -> dict[str, Any]:
    sketches = [hour.latency_sketch for hour in hours if hour.latency_sketch]
    return {
        "component": component,
        "kind": hours[-1].kind,
        "day": day,
        **{column: sum(getattr(hour, column) for hour in hours) for column in SUMMED},
        "latency_sketch": from_many_bytes(sketches).to_bytes() if sketches else b"",
    }


async def reopen(session: AsyncSession, component: str, hour: datetime) -> None:
    """Makes the day of ``hour`` hours again for ``component``, as a change to one of its
    rolled-up hours must be read."""
    day = day_floor(hour)
    # Hours first: a rollup of this day still under way holds some of them, and the delete
    # that follows must come after it has committed, to see the day row it adds.
    await session.execute(
        update(HealthHour)
        .where(
            HealthHour.component == component,
            HealthHour.hour >= day,
            HealthHour.hour < day + DAY,
            HealthHour.rolled_up == true(),
        )
        .values(rolled_up=False)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        delete(HealthDay)
        .where(HealthDay.component == component, HealthDay.day == day)
        .execution_options(synchronize_session=False)
    )


async def delete_expired(session: AsyncSession, *, before: datetime) -> None:
    """Deletes the hours before ``before`` and the day rows that held any of them; what
    is left of a day cut by ``before`` is read as hours from then on."""
    await session.execute(delete(HealthHour).where(HealthHour.hour < before))
    await session.execute(delete(HealthDay).where(HealthDay.day < before))
    await session.execute(
        update(HealthHour)
        .where(
            HealthHour.rolled_up == true(),
            HealthHour.hour >= before,
            HealthHour.hour < day_ceil(before),
        )
        .values(rolled_up=False)
        .execution_options(synchronize_session=False)
    )


def cut_days(*moments: datetime) -> dict[str, datetime]:
    """The bound values ``hours_and_days`` takes for the days of ``moments``: each distinct
    one in order (``cut_0``, ``cut_1``, …) and its end (``cut_0_end``, …)."""
    days = sorted({day_floor(moment) for moment in moments})
    named = ((f"cut_{n}", day) for n, day in enumerate(days))
    return {
        key: value
        for name, day in named
        for key, value in ((name, day), (f"{name}_end", day + DAY))
    }


def hours_and_days(read: Read, *, cuts: int, where: Where) -> CompoundSelect[Any]:
    """``read`` of every row covering the stretch ``where`` keeps, each hour read once: the
    hours of the ``cuts`` days bound as ``cut_days`` names them (the days the stretch or its
    parts cut, read hour by hour), and of every other day its day rows and the hours not
    rolled up yet.

    ``read`` gives the statement for a table and its time column (an hour, or a day's
    midnight); it runs for each of these parts, each a plain range of an index, and the
    statement unites them (a single OR of them all had the store gather every row before
    grouping, several times slower). Grouped reads give a few rows per group, to be added
    up. The statement takes every value as a bound parameter, so one built for a shape can
    serve every call: building it costs more than running it."""
    hour, component, day = HealthHour.hour, HealthHour.component, HealthDay.day
    starts = [moment(f"cut_{n}") for n in range(cuts)]
    ends = [moment(f"cut_{n}_end") for n in range(cuts)]
    # The stretches around those days, where day rows and not-yet-rolled hours are read.
    gaps = list(zip([None, *ends], [*starts, None], strict=True))
    return union_all(
        *(
            read(HealthHour, hour).where(
                HealthHour.rolled_up == false(),
                *_within(hour, lower, upper),
                *where(hour, component),
            )
            for lower, upper in gaps
        ),
        *(
            read(HealthHour, hour).where(hour >= lower, hour < upper, *where(hour, component))
            for lower, upper in zip(starts, ends, strict=True)
        ),
        *(
            read(HealthDay, day).where(
                *_within(day, lower, upper), *where(day, HealthDay.component)
            )
            for lower, upper in gaps
        ),
    )


def moment(name: str) -> BindParameter[datetime]:
    """A time bound when the statement runs, by ``name``."""
    return bindparam(name, type_=UTCDateTime())


def _within(at: Any, lower: Any, upper: Any) -> list[ColumnElement[bool]]:
    return [
        *(() if lower is None else (at >= lower,)),
        *(() if upper is None else (at < upper,)),
    ]
