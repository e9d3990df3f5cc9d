"""Reading stored request metrics: tallies per endpoint for any time range, and their figures.

An endpoint is one service's method and route; every read may be narrowed to some services
(none named: every service).

A range ``[since, until)`` is answered from the hour rows of the whole hours it covers
(plus minute rows of those hours not rolled up yet, e.g. late flushes) and from every
minute row of the partial hours at its edges. That is exact for any range whose edges are
within the minute retention, and each request is read once: a rolled-up minute is only read
where its hour row is not.

:func:`window_figures` is the small public entry point for the alert rules: requests, p95,
5xx share and the share within the latency objective, per endpoint, per service and overall,
for a range.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Final, NamedTuple

from sqlalchemy import ColumnElement, Executable, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.core.hours import hour_ceil, hour_floor
from app.db.models import RequestHour, RequestMinute
from app.schemas.objectives import Objectives
from app.vocabulary.performance import StatusClass
from app.vocabulary.sketch import QuantileSketch, from_many_bytes

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


@dataclass
class RequestAggregate:
    """Requests of one endpoint (or of all) over some stretch, with their merged sketch."""

    requests: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    client_errors: int = 0
    server_errors: int = 0
    blobs: list[bytes] = field(default_factory=list)
    merged: list[QuantileSketch] = field(default_factory=list)

    def add_row(
        self, klass: StatusClass, count: int, sum_ms: float, max_ms: float, sketch: bytes
    ) -> None:
        """Counts one stored row."""
        self.requests += count
        self.sum_ms += sum_ms
        self.max_ms = max(self.max_ms, max_ms)
        if klass is StatusClass.CLIENT_ERROR:
            self.client_errors += count
        elif klass is StatusClass.SERVER_ERROR:
            self.server_errors += count
        self.blobs.append(sketch)

    def absorb(self, other: RequestAggregate) -> None:
        """Adds another aggregate's requests (its sketch is merged, not re-decoded)."""
        self.requests += other.requests
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors
        self.merged.append(other.sketch)

    @cached_property
    def sketch(self) -> QuantileSketch:
        """Every duration counted, as one sketch (decoded once, on first use)."""
        sketch = from_many_bytes(self.blobs)
        for other in self.merged:
            sketch.merge(other)
        return sketch

    def quantile(self, q: float) -> float | None:
        """The duration at quantile ``q`` in ms, or None without requests."""
        value = self.sketch.quantile(q) if self.requests else None
        return None if value is None else round(value, 3)

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
        return self.sketch.fraction_at_most(latency_ms) if self.requests else None


def merged(aggregates: Iterable[RequestAggregate]) -> RequestAggregate:
    """One aggregate of all of them."""
    total = RequestAggregate()
    for aggregate in aggregates:
        if aggregate.requests:
            total.absorb(aggregate)
    return total


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
    found: dict[Endpoint, RequestAggregate] = defaultdict(RequestAggregate)
    # Core rows, no timestamps: ORM loading and datetime conversion were most of the time.
    connection = await session.connection()
    for statement in _statements(since, until, services):
        for (
            service,
            route,
            method,
            klass,
            count,
            sum_ms,
            max_ms,
            sketch,
        ) in await connection.execute(statement):
            found[Endpoint(service, method, route)].add_row(klass, count, sum_ms, max_ms, sketch)
    return dict(found)


async def read_segments(
    session: AsyncSession, bounds: Sequence[datetime], *, services: Collection[str] = ()
) -> list[dict[Endpoint, RequestAggregate]]:
    """Aggregates per endpoint of each ``[bounds[i], bounds[i + 1])``."""
    return [
        await read_aggregates(session, since, until, services=services)
        for since, until in itertools.pairwise(bounds)
    ]


def _of_services(
    column: QueryableAttribute[str], services: Collection[str]
) -> list[ColumnElement[bool]]:
    """The condition that narrows rows to ``services``; none when every service is asked."""
    return [column.in_(sorted(set(services)))] if services else []


def _statements(since: datetime, until: datetime, services: Collection[str]) -> list[Executable]:
    first_whole, last_whole = hour_ceil(since), hour_floor(until)
    minute = RequestMinute.minute
    in_range = [minute >= since, minute < until, *_of_services(RequestMinute.service, services)]
    statements: list[Executable] = []
    if first_whole < last_whole:
        statements.append(
            select(
                RequestHour.service,
                RequestHour.route,
                RequestHour.method,
                RequestHour.status_class,
                RequestHour.count,
                RequestHour.sum_ms,
                RequestHour.max_ms,
                RequestHour.sketch,
            ).where(
                RequestHour.hour >= first_whole,
                RequestHour.hour < last_whole,
                *_of_services(RequestHour.service, services),
            )
        )
        # Inside whole hours only what the hour rows lack; at the edges every minute.
        in_range.append(
            or_(RequestMinute.rolled_up == false(), minute < first_whole, minute >= last_whole)
        )
    statements.append(
        select(
            RequestMinute.service,
            RequestMinute.route,
            RequestMinute.method,
            RequestMinute.status_class,
            RequestMinute.count,
            RequestMinute.sum_ms,
            RequestMinute.max_ms,
            RequestMinute.sketch,
        ).where(and_(*in_range))
    )
    return statements


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
