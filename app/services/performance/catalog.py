"""The services whose requests are stored: when each was first and last seen, where its
figures come from, and how its last day went.

Names, sources and seen times are read by walking the (service, source, time) indexes of
the minute and hour rows: a few index probes a service, whatever the history holds (a
grouped scan of 30 days of rows took ~300 ms). The day's figures decode only that day's
rows, as the analysis does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import CTE, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import RequestHour, RequestMinute
from app.schemas.performance import ServiceReport, ServiceSummary
from app.services.performance.figures import RequestAggregate, per_service, read_aggregates
from app.vocabulary.performance import RequestSource

DAY: Final = timedelta(hours=24)


@dataclass
class _Seen:
    first: datetime
    last: datetime
    sources: set[RequestSource] = field(default_factory=set)

    def widen(self, first: datetime, last: datetime, source: RequestSource) -> None:
        self.first, self.last = min(self.first, first), max(self.last, last)
        self.sources.add(source)


_TABLES: Final = ((RequestMinute, RequestMinute.minute), (RequestHour, RequestHour.hour))


def _walk(table: Any) -> CTE:
    """The table's distinct services, each found by one probe of the service index for the
    least name after the last one (a loose index scan), ending in one NULL."""
    walk = select(func.min(table.service).label("service")).cte("services", recursive=True)
    following = select(
        select(func.min(table.service)).where(table.service > walk.c.service).scalar_subquery()
    ).where(walk.c.service.is_not(None))
    return walk.union_all(following)


async def service_names(session: AsyncSession) -> list[str]:
    """Every service with stored requests, by name."""
    names: set[str] = set()
    for table, _ in _TABLES:
        walk = _walk(table)
        names.update(
            await session.scalars(select(walk.c.service).where(walk.c.service.is_not(None)))
        )
    return sorted(names)


def _first_and_last(table: Any, at: Any) -> Any:
    """Each service's first and last time in ``table`` from each source (NULL: never)."""
    walk = _walk(table)
    return union_all(
        *(
            select(
                walk.c.service,
                literal(source.value).label("source"),
                *(
                    select(edge(at))
                    .where(table.service == walk.c.service, table.source == source)
                    .scalar_subquery()
                    for edge in (func.min, func.max)
                ),
            ).where(walk.c.service.is_not(None))
            for source in RequestSource
        )
    )


async def _seen(session: AsyncSession) -> dict[str, _Seen]:
    """When each service was first and last seen, and from which sources."""
    seen: dict[str, _Seen] = {}
    for table, at in _TABLES:
        for service, source, first, last in await session.execute(_first_and_last(table, at)):
            if first is not None:
                seen.setdefault(service, _Seen(first, last)).widen(
                    first, last, RequestSource(source)
                )
    return seen


async def service_report(session: AsyncSession, *, now: datetime) -> ServiceReport:
    """Every service stored, by name, with the figures of the 24 hours before ``now``."""
    seen = await _seen(session)
    day = per_service(await read_aggregates(session, now - DAY, now))
    return ServiceReport(
        services=[
            _summary(service, seen[service], day.get(service, RequestAggregate()))
            for service in sorted(seen)
        ]
    )


def _summary(service: str, seen: _Seen, day: RequestAggregate) -> ServiceSummary:
    return ServiceSummary(
        service=service,
        first_seen=seen.first,
        last_seen=seen.last,
        requests_24h=day.requests,
        p95_ms_24h=day.quantile(0.95),
        error_rate_24h=None if day.error_rate is None else round(day.error_rate, 6),
        sources=sorted(seen.sources),
    )
