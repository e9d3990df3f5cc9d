"""Reading stored request metrics: tallies per endpoint for any time range, and their figures.

An endpoint is one service's method and route; every read may be narrowed to some services
(none named: every service).

A range ``[since, until)`` is answered from the day rows of the whole days it covers, the
hour rows of the other whole hours, and every minute row of the partial hours at its edges,
plus the rows a rollup has not folded in yet (minutes of its whole hours and hours of its
whole days, e.g. late flushes). That is exact for any range whose edges are within the
minute retention, and each request is read once: a rolled-up row is only read where the
row it was rolled into is not.

The store does the adding up: one grouped query per read returns, for each stretch and
endpoint, its counts, sums and maximum and the concatenation of its stored sketches (with
their lengths), so only a row per endpoint crosses to Python and
:func:`~app.vocabulary.histograms.decode_groups` merges every endpoint's sketches
at once.

:func:`window_figures` is the small public entry point for the alert rules: requests, p95,
5xx share and the share within the latency objective, per endpoint, per service and overall,
for a range.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.hours import day_ceil, day_floor, hour_ceil, hour_floor
from app.db.aggregates import joined_sketches
from app.db.models import RequestDay, RequestHour, RequestMinute
from app.db.store import group_blobs_in_memory
from app.schemas.objectives import Objectives
from app.vocabulary.histograms import (
    EMPTY,
    Histogram,
    decode_groups,
    merge,
)
from app.vocabulary.performance import StatusClass

# Only for callers that count requests and ignore the latency share: the default
# objectives, never a second copy of their numbers. The SLO's judges pass the configured one.
_DEFAULT_OBJECTIVES: Final = Objectives()


class Endpoint(NamedTuple):
    """What an endpoint is: a route and method of one service."""

    service: str
    method: str
    route: str

    @property
    def name(self) -> str:
        """How every answer and alert names it: ``shop GET /orders/{id}``."""
        return f"{self.service} {self.method} {self.route}"


@dataclass(frozen=True)
class RequestAggregate:
    """Requests of one endpoint (or of all) over some stretch, with their merged sketches."""

    requests: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    client_errors: int = 0
    server_errors: int = 0
    histogram: Histogram = EMPTY

    def quantile(self, q: float) -> float | None:
        """The duration at quantile ``q`` in ms, or None without requests."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """The durations at several quantiles in ms (None without requests), in one pass."""
        if not self.requests:
            return [None] * len(qs)
        return [None if v is None else round(v, 3) for v in self.histogram.quantiles(qs)]

    @property
    def avg_ms(self) -> float | None:
        return round(self.sum_ms / self.requests, 3) if self.requests else None

    @property
    def error_rate(self) -> float | None:
        """The 5xx share."""
        return self.server_errors / self.requests if self.requests else None

    @property
    def client_error_rate(self) -> float | None:
        """The 4xx share."""
        return self.client_errors / self.requests if self.requests else None

    def share_within(self, latency_ms: float) -> float | None:
        """The share of requests answered within ``latency_ms``, or None without requests."""
        return self.histogram.fraction_at_most(latency_ms) if self.requests else None


def merged(aggregates: Iterable[RequestAggregate]) -> RequestAggregate:
    """One aggregate of all of them."""
    found = [aggregate for aggregate in aggregates if aggregate.requests]
    if len(found) == 1:
        return found[0]
    return RequestAggregate(
        requests=sum(a.requests for a in found),
        sum_ms=sum(a.sum_ms for a in found),
        max_ms=max((a.max_ms for a in found), default=0.0),
        client_errors=sum(a.client_errors for a in found),
        server_errors=sum(a.server_errors for a in found),
        histogram=merge(a.histogram for a in found),
    )


def per_service(
    aggregates: dict[Endpoint, RequestAggregate],
) -> dict[str, RequestAggregate]:
    """The aggregates of each service's endpoints, merged."""
    services: dict[str, list[RequestAggregate]] = defaultdict(list)
    for endpoint, aggregate in aggregates.items():
        services[endpoint.service].append(aggregate)
    return {service: merged(found) for service, found in services.items()}


async def read_aggregates(
    session: AsyncSession,
    since: datetime,
    until: datetime,
    *,
    services: Collection[str] = (),
) -> dict[Endpoint, RequestAggregate]:
    """Aggregates per endpoint of ``[since, until)``, of ``services`` (none: every one)."""
    (found,) = await read_segments(session, (since, until), services=services)
    return found


async def read_segments(
    session: AsyncSession, bounds: Sequence[datetime], *, services: Collection[str] = ()
) -> list[dict[Endpoint, RequestAggregate]]:
    """Aggregates per endpoint of each ``[bounds[i], bounds[i + 1])``, in one query."""
    found: list[dict[Endpoint, RequestAggregate]] = [{} for _ in range(len(bounds) - 1)]
    if not found:
        return found
    # Core rows, one per stretch and endpoint: the store has added everything up.
    connection = await session.connection()
    await group_blobs_in_memory(connection)
    rows = (await connection.execute(_grouped(bounds, services))).all()
    histograms = decode_groups([row.headers for row in rows], [row.records for row in rows])
    for row, histogram in zip(rows, histograms, strict=True):
        found[row.segment][Endpoint(row.service, row.method, row.route)] = RequestAggregate(
            requests=int(row.requests),
            sum_ms=float(row.sum_ms),
            max_ms=float(row.max_ms),
            client_errors=int(row.client_errors),
            server_errors=int(row.server_errors),
            histogram=histogram,
        )
    return found


def _of_services(column: Any, services: Collection[str]) -> list[ColumnElement[bool]]:
    """The condition that narrows rows to ``services``; none when every service is asked."""
    return [column.in_(sorted(set(services)))] if services else []


def _segment(at: Any, bounds: Sequence[datetime]) -> ColumnElement[int]:
    """Which stretch a row's start falls in: ``i`` for ``[bounds[i], bounds[i + 1])``."""
    inner = bounds[1:-1]
    if not inner:
        return literal(0)
    return case(*((at < bound, n) for n, bound in enumerate(inner)), else_=len(inner))


def _grouped(bounds: Sequence[datetime], services: Collection[str]) -> Select[*tuple[Any, ...]]:
    """Per stretch and endpoint: the rows' counts, sums, maximum and joined sketches."""
    rows = _tallies(bounds, services).subquery()
    klass, count, sketch = rows.c.status_class, rows.c.count, rows.c.sketch
    keys = (rows.c.segment, rows.c.service, rows.c.route, rows.c.method)
    headers, records = joined_sketches(sketch)
    return select(
        *keys,
        func.sum(count).label("requests"),
        func.sum(rows.c.sum_ms).label("sum_ms"),
        func.max(rows.c.max_ms).label("max_ms"),
        func.sum(case((klass == StatusClass.CLIENT_ERROR, count), else_=0)).label("client_errors"),
        func.sum(case((klass == StatusClass.SERVER_ERROR, count), else_=0)).label("server_errors"),
        # Headers and records apart: each group's are then one numpy view apiece.
        headers.label("headers"),
        records.label("records"),
    ).group_by(*keys)


def _tallies(bounds: Sequence[datetime], services: Collection[str]) -> CompoundSelect[Any]:
    """Every stored row a read of the stretches needs, each with the stretch it is in."""
    days = _whole(bounds, day_ceil, day_floor)
    hours = _whole(bounds, hour_ceil, hour_floor)
    minute, hour = RequestMinute.minute, RequestHour.hour
    # Whole days from day rows, the other whole hours from hour rows, every minute at the
    # edges; inside a day or an hour only what its rollup lacks (rows stored late). Each
    # part is an index range, so no row of a rolled-up stretch is read to be dropped.
    minutes_in = [
        *_between(minute, _gaps(bounds[0], hours, bounds[-1])),
        and_(RequestMinute.rolled_up == false(), minute >= bounds[0], minute < bounds[-1]),
    ]
    parts = [_tally(RequestMinute, minute, bounds, services).where(or_(*minutes_in))]
    hours_in = _between(hour, _within(hours, _gaps(bounds[0], days, bounds[-1])))
    if days:
        hours_in.append(and_(RequestHour.rolled_up == false(), or_(*_between(hour, days))))
    if hours_in:
        parts.append(_tally(RequestHour, hour, bounds, services).where(or_(*hours_in)))
    if days:
        day = RequestDay.day
        parts.append(_tally(RequestDay, day, bounds, services).where(or_(*_between(day, days))))
    return union_all(*parts)


Run = tuple[datetime, datetime]


def _whole(
    bounds: Sequence[datetime],
    ceil: Callable[[datetime], datetime],
    floor: Callable[[datetime], datetime],
) -> list[Run]:
    """The runs of whole periods (hours or days) inside the stretches, ascending."""
    runs: list[Run] = []
    for since, until in itertools.pairwise(bounds):
        first, last = ceil(since), floor(until)
        if first >= last:
            continue
        if runs and runs[-1][1] == first:  # stretches that meet on a boundary read as one run
            first = runs.pop()[0]
        runs.append((first, last))
    return runs


def _gaps(start: datetime, runs: Sequence[Run], end: datetime) -> list[Run]:
    """The parts of ``[start, end)`` outside ``runs`` (ascending, inside it)."""
    around = [start, *itertools.chain.from_iterable(runs), end]
    return [(a, b) for a, b in zip(around[::2], around[1::2], strict=True) if a < b]


def _within(runs: Sequence[Run], limits: Sequence[Run]) -> list[Run]:
    """The parts of ``runs`` inside ``limits``."""
    return [
        (max(a, low), min(b, high))
        for a, b in runs
        for low, high in limits
        if max(a, low) < min(b, high)
    ]


def _between(column: Any, runs: Iterable[Run]) -> list[ColumnElement[bool]]:
    return [and_(column >= first, column < last) for first, last in runs]


def _tally(
    table: type[RequestDay] | type[RequestHour] | type[RequestMinute],
    at: Any,
    bounds: Sequence[datetime],
    services: Collection[str],
) -> Select[*tuple[Any, ...]]:
    """The columns a read needs from a table of tallies, with each row's stretch."""
    return select(
        _segment(at, bounds).label("segment"),
        table.service,
        table.route,
        table.method,
        table.status_class,
        table.count,
        table.sum_ms,
        table.max_ms,
        table.sketch,
    ).where(*_of_services(table.service, services))


@dataclass(frozen=True)
class RouteFigures:
    """Requests, p95 and 5xx share of one endpoint (or of all) over a range."""

    requests: int
    p95_ms: float | None
    error_rate: float | None
    within_slo: float | None  # the share answered within the latency objective

    @classmethod
    def of(cls, aggregate: RequestAggregate, latency_ms: float) -> RouteFigures:
        return cls(
            aggregate.requests,
            aggregate.quantile(0.95),
            aggregate.error_rate,
            aggregate.share_within(latency_ms),
        )


@dataclass(frozen=True)
class WindowFigures:
    """Figures of ``[since, until)``: overall, per service and per endpoint."""

    since: datetime
    until: datetime
    overall: RouteFigures
    services: dict[str, RouteFigures]
    endpoints: dict[Endpoint, RouteFigures]


async def window_figures(
    session: AsyncSession,
    since: datetime,
    until: datetime,
    *,
    latency_ms: float = _DEFAULT_OBJECTIVES.latency_ms,
    services: Collection[str] = (),
) -> WindowFigures:
    """Requests, p95 (ms), 5xx share and share within ``latency_ms`` per endpoint, per
    service and overall, for ``[since, until)`` and ``services`` (none: every one); pass
    ``settings.objectives.latency_ms``."""
    found = await read_aggregates(session, since, until, services=services)
    return WindowFigures(
        since=since,
        until=until,
        overall=RouteFigures.of(merged(found.values()), latency_ms),
        services={
            service: RouteFigures.of(aggregate, latency_ms)
            for service, aggregate in per_service(found).items()
        },
        endpoints={
            endpoint: RouteFigures.of(aggregate, latency_ms)
            for endpoint, aggregate in found.items()
        },
    )
