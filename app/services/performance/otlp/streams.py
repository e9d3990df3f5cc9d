"""Metric streams turned into counts of new requests: each point against the stream's last.

A cumulative point carries every request since its ``start_time_unix_nano``; what is new is
its difference from the stream's previous point, kept in ``ingest_streams`` (the store, not
a process, so any replica can take the next export and two replicas taking alternate
exports count every request once). A delta point is new as it is. The rules, per point:

* the stream's first point counts whole (a cumulative one: every request since its start),
  unless its service is a *baseline* one (its spans were being counted: the point only
  marks where the metrics take over, see :mod:`.routes`);
* a point older than the stream's last is refused (a late or reordered export); a delta
  point no newer than the last is refused too, since it is a retry of one already counted;
* a cumulative point with another start time is a restarted exporter and counts whole;
* a cumulative point is differenced bucket by bucket; if any bucket would go negative the
  totals were reset without a new start time, and the point counts whole, never negative;
* explicit bounds that change within a stream cannot be differenced: the point becomes the
  stream's new state and its requests are refused (counted in ``partial_success``).

Exponential histograms may lower their scale as values spread out: both points are brought
to the coarser scale first (bucket ``i`` at scale ``s`` is bucket ``i >> (s - s')`` at
``s' < s``), so the difference is exact in count and as fine as the coarser point.

Each stream keeps, with its buckets, ``counted_from``: the instant from which its metrics
count requests (its start, or the baseline point's time); spans of the service that end
before the earliest of them are still counted, later ones are not.

The difference of a cumulative stream holds no ``min`` or ``max`` of its own; a new
maximum (minimum) of the running totals did fall in the interval, so it is kept, and
otherwise the interval's extreme is unknown and left out.

:func:`advance` reads the streams of an export with ``FOR UPDATE`` (PostgreSQL makes a
second replica wait and then read the committed state; SQLite has one writer anyway) and
writes each back with an update conditional on the previous point's times: an update that
matches nothing, or an insert that meets a row inserted meanwhile, means another replica
moved first, and the caller retries the whole export on fresh state (:class:`StreamRace`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IngestStream
from app.services.performance.otlp.metrics import (
    ExplicitBuckets,
    ExponentialBuckets,
    HistogramPoint,
    Temporality,
)

OLDER: Final = "older than its stream's last point"
REPEATED: Final = "delta point no newer than its stream's last (a retry already counted)"
LAYOUT_CHANGED: Final = "explicit bounds changed without a new start time"
# Rows read per statement; an export holds a few hundred streams at most.
_READ_CHUNK: Final = 500


class StreamRace(Exception):
    """Another replica advanced or created one of the streams first; retry on fresh state."""


@dataclass(slots=True)
class _State:
    """A stream's last point as stored, and the times it had when read (for the update)."""

    start: int
    time: int
    count: int
    sum_ms: float
    buckets: dict[str, Any]
    read_as: tuple[int, int] | None  # (start, time) in the store; None: a new stream


@dataclass(frozen=True, slots=True)
class Advance:
    """What an export's points add: the new requests of each, the points refused, and from
    when each service's metrics count its requests."""

    new: tuple[HistogramPoint, ...]  # each holds only its stream's new requests
    refused: dict[str, int]  # reason -> points
    counted_from: dict[str, int]  # service -> the earliest counted_from of its streams (ns)


async def advance(
    session: AsyncSession, points: Sequence[HistogramPoint], *, baselines: Set[str] = frozenset()
) -> Advance:
    """Difference every point against its stream's last and store it as the new last.

    A new stream of a service in ``baselines`` counts nothing: its first point is where
    the metrics take over. Raises :class:`StreamRace` when another replica moved one of
    the streams meanwhile.
    """
    states = await _read(session, {point.stream_key for point in points})
    new: list[HistogramPoint] = []
    refused: dict[str, int] = {}
    services: dict[str, str] = {}
    counted_from: dict[str, int] = {}
    for point in sorted(points, key=lambda p: p.time_unix_nano):
        services[point.stream_key] = point.service
        state = states.get(point.stream_key)
        if state is None:
            baseline = point.service in baselines
            start = point.time_unix_nano if baseline else point.start_time_unix_nano
            outcome: HistogramPoint | str | None = None if baseline else point
        else:
            start = state.buckets.get("counted_from", state.start)
            outcome = _difference(state, point)
        if isinstance(outcome, str):
            refused[outcome] = refused.get(outcome, 0) + 1
        elif outcome is not None and outcome.count:
            new.append(outcome)
        service = point.service
        counted_from[service] = min(counted_from.get(service, start), start)
        if isinstance(outcome, str) and outcome != LAYOUT_CHANGED:
            continue  # the stream stays as it was
        states[point.stream_key] = _State(
            point.start_time_unix_nano,
            point.time_unix_nano,
            point.count,
            point.sum_ms or 0.0,
            _stored_buckets(point, start),
            state.read_as if state is not None else None,
        )
    await _write(session, states, services)
    return Advance(tuple(new), refused, counted_from)


async def _read(session: AsyncSession, keys: Iterable[str]) -> dict[str, _State]:
    ordered = sorted(keys)  # one locking order, so two replicas never deadlock
    states: dict[str, _State] = {}
    for start in range(0, len(ordered), _READ_CHUNK):
        query = (
            select(IngestStream)
            .where(IngestStream.stream_key.in_(ordered[start : start + _READ_CHUNK]))
            .order_by(IngestStream.stream_key)
            .with_for_update()
        )
        for row in (await session.scalars(query)).all():
            states[row.stream_key] = _State(
                row.start_time_unix_nano,
                row.time_unix_nano,
                row.count,
                row.sum_ms,
                row.buckets,
                (row.start_time_unix_nano, row.time_unix_nano),
            )
    return states


async def _write(
    session: AsyncSession, states: dict[str, _State], services: dict[str, str]
) -> None:
    """Stores each stream's new last point; :class:`StreamRace` if another moved first."""
    created = []
    for key, state in states.items():
        values = {
            "start_time_unix_nano": state.start,
            "time_unix_nano": state.time,
            "count": state.count,
            "sum_ms": state.sum_ms,
            "buckets": state.buckets,
        }
        if state.read_as is None:
            created.append({"stream_key": key, "service": services[key], **values})
            continue
        if (state.start, state.time) == state.read_as:
            continue  # every point of the stream was refused: nothing changed
        result = await session.execute(
            update(IngestStream)
            .where(
                IngestStream.stream_key == key,
                IngestStream.start_time_unix_nano == state.read_as[0],
                IngestStream.time_unix_nano == state.read_as[1],
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StreamRace(key)
    if created:
        # A unique key inserted meanwhile raises IntegrityError, which the caller retries.
        await session.execute(insert(IngestStream), created)


def _difference(state: _State, point: HistogramPoint) -> HistogramPoint | str:
    """The point's new requests as a point, or why it is refused."""
    if point.time_unix_nano < state.time:
        return OLDER
    if point.temporality is Temporality.DELTA:
        return point if point.time_unix_nano > state.time else REPEATED
    if point.start_time_unix_nano != state.start:
        return point  # the exporter restarted: its totals begin afresh
    buckets = _subtract(state.buckets, point)
    if isinstance(buckets, str):
        return buckets
    if buckets is None:
        return point  # a reset without a new start time: count what the point holds
    new_count = _total(buckets)
    sum_ms = None if point.sum_ms is None else max(point.sum_ms - state.sum_ms, 0.0)
    previous_min, previous_max = state.buckets.get("min_ms"), state.buckets.get("max_ms")
    return dataclasses.replace(
        point,
        count=new_count,
        sum_ms=sum_ms,
        min_ms=_new_extreme(point.min_ms, previous_min, lower=True),
        max_ms=_new_extreme(point.max_ms, previous_max, lower=False),
        buckets=buckets,
    )


def _new_extreme(current: float | None, previous: float | None, *, lower: bool) -> float | None:
    """The running extreme if it moved in the interval (so it is the interval's), else None."""
    if current is None or previous is None:
        return None
    moved = current < previous if lower else current > previous
    return current if moved else None


def _total(buckets: ExplicitBuckets | ExponentialBuckets) -> int:
    if isinstance(buckets, ExplicitBuckets):
        return sum(buckets.counts)
    return buckets.zero_count + sum(buckets.counts)


def _subtract(
    stored: dict[str, Any], point: HistogramPoint
) -> ExplicitBuckets | ExponentialBuckets | str | None:
    """The point's buckets minus the stored ones; None when one would go negative."""
    buckets = point.buckets
    if isinstance(buckets, ExplicitBuckets):
        previous = stored.get("explicit")
        if previous is None or tuple(previous["bounds_ms"]) != buckets.bounds_ms:
            return LAYOUT_CHANGED
        counts = tuple(
            new - old for new, old in zip(buckets.counts, previous["counts"], strict=True)
        )
        return (
            None
            if any(count < 0 for count in counts)
            else ExplicitBuckets(buckets.bounds_ms, counts)
        )
    old = stored.get("exponential")
    if old is None:
        return LAYOUT_CHANGED
    scale = min(buckets.scale, old["scale"])
    zero_count = buckets.zero_count - old["zero_count"]
    difference = _indexed(buckets.scale, buckets.offset, buckets.counts, scale)
    for index, count in _indexed(old["scale"], old["offset"], old["counts"], scale).items():
        difference[index] = difference.get(index, 0) - count
    if zero_count < 0 or any(count < 0 for count in difference.values()):
        return None
    kept = [index for index, count in difference.items() if count]
    offset = min(kept, default=0)
    counts = tuple(difference.get(index, 0) for index in range(offset, max(kept, default=-1) + 1))
    return ExponentialBuckets(scale, zero_count, offset, counts, buckets.unit_ms)


def _indexed(scale: int, offset: int, counts: Sequence[int], to_scale: int) -> dict[int, int]:
    """Bucket index -> count at ``to_scale`` (not above ``scale``)."""
    shift = scale - to_scale
    merged: dict[int, int] = {}
    for position, count in enumerate(counts):
        if count:
            index = (offset + position) >> shift
            merged[index] = merged.get(index, 0) + count
    return merged


def _stored_buckets(point: HistogramPoint, counted_from: int) -> dict[str, Any]:
    """The point's buckets and extremes as the ``buckets`` column keeps them."""
    buckets = point.buckets
    stored: dict[str, Any] = {
        "min_ms": point.min_ms,
        "max_ms": point.max_ms,
        "counted_from": counted_from,
    }
    if isinstance(buckets, ExplicitBuckets):
        stored["explicit"] = {"bounds_ms": list(buckets.bounds_ms), "counts": list(buckets.counts)}
    else:
        stored["exponential"] = {
            "scale": buckets.scale,
            "zero_count": buckets.zero_count,
            "offset": buckets.offset,
            "counts": list(buckets.counts),
        }
    return stored
