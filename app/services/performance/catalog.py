"""The services whose requests are stored: when each was first and last seen, where its
figures come from, and how its last day went.

Seen times and sources come from two grouped scans (minute rows and hour rows) that read
no sketch; the day's figures decode only that day's rows, as the analysis does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
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


async def service_report(session: AsyncSession, *, now: datetime) -> ServiceReport:
    """Every service stored, by name, with the figures of the 24 hours before ``now``."""
    seen: dict[str, _Seen] = {}
    for table, at in ((RequestMinute, RequestMinute.minute), (RequestHour, RequestHour.hour)):
        rows = await session.execute(
            select(table.service, table.source, func.min(at), func.max(at)).group_by(
                table.service, table.source
            )
        )
        for service, source, first, last in rows:
            seen.setdefault(service, _Seen(first, last)).widen(first, last, RequestSource(source))
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
