"""What keeps each received service's series bounded: a cap on its routes, and which
services send duration metrics (whose spans are then not counted a second time).

:class:`RouteBudget` admits at most ``cap`` distinct routes per service: those already
stored for it (every minute and hour row still kept, i.e. the retention window), read once
per service and process, and those admitted since. Further routes share the unmatched
bucket, and the export's ``partial_success`` says so. Each replica admits on its own, so
several replicas may admit up to ``cap`` new routes each before they see each other's rows:
bounded, if not exactly ``cap``.

:class:`MetricsSenders` decides the double-counting question. A service that sends both
SERVER spans and ``http.server`` duration histograms reports every request twice; the
metrics win, because their counts are exact whatever the sampler keeps, while spans count
only what was sampled. The hand-over is exact: the metrics of a service count its requests
from an instant (the earliest ``counted_from`` of its streams, see :mod:`.streams`), and
its spans count only if they ended before it. A service whose spans were being counted
when its first metrics arrive takes those first points as a baseline (they count nothing;
the instant is their time), so the requests the spans counted are not counted again; a
service whose metrics arrive first counts them whole (the instant is the exporter's start).
Either way every request is counted once, by one of the two. A service that stops sending
metrics for :data:`METRICS_WINDOW_SECONDS` has its spans counted again.

What one process knows of this is shared through the store (the streams' rows), read again
at most every :data:`RECHECK_SECONDS`. One case is not seen across replicas: spans counted
by one replica while another takes the service's very first metrics, which then count
whole, so that first export interval is counted twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IngestStream, RequestHour, RequestMinute
from app.vocabulary.performance import UNMATCHED_ROUTE

# A metric exporter sends every 60 s by default; ten missed exports mean it stopped.
METRICS_WINDOW_SECONDS: Final = 600.0
# How often the store is asked again whether another replica heard a service's metrics.
RECHECK_SECONDS: Final = 60.0


class RouteBudget:
    """At most ``cap`` distinct routes per service, the stored ones first."""

    __slots__ = ("_cap", "_routes")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._routes: dict[str, set[str]] = {}

    @property
    def cap(self) -> int:
        return self._cap

    def unknown(self, services: Iterable[str]) -> set[str]:
        """The services whose stored routes this process has not read yet."""
        return {service for service in services if service not in self._routes}

    async def load(self, session: AsyncSession, services: Iterable[str]) -> None:
        """Read the stored routes of ``services`` (at most ``cap`` each)."""
        for service in self.unknown(services):
            stored: set[str] = set()
            for table in (RequestMinute, RequestHour):
                query = (
                    select(table.route)
                    .where(table.service == service, table.route != UNMATCHED_ROUTE)
                    .distinct()
                    .limit(self._cap)
                )
                stored.update((await session.scalars(query)).all())
            # A cap lowered since the routes were stored keeps only that many of them.
            routes = self._routes.setdefault(service, set())
            routes.update(sorted(stored)[: max(self._cap - len(routes), 0)])

    def admit(self, service: str, route: str) -> bool:
        """Whether ``route`` has (or now takes) one of the service's places."""
        routes = self._routes.setdefault(service, set())
        if route in routes:
            return True
        if len(routes) >= self._cap:
            return False
        routes.add(route)
        return True


class MetricsSenders:
    """Which services send request-duration metrics, and from when those count requests."""

    __slots__ = ("_asked", "_clock", "_heard", "_spans")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # service -> (when its metrics were last heard, epoch s; counted from, epoch ns)
        self._heard: dict[str, tuple[float, int]] = {}
        self._asked: dict[str, float] = {}  # service -> when the store was last asked
        self._spans: dict[str, float] = {}  # service -> when its spans were last counted

    def heard(self, counted_from: Mapping[str, int]) -> None:
        """Note metrics just now, counting each service's requests from the instant given."""
        now = self._clock()
        for service, instant in counted_from.items():
            known = self._heard.get(service)
            self._heard[service] = (now, instant if known is None else min(known[1], instant))

    def spans_until(self, service: str) -> float | None:
        """The instant (epoch s) before which the service's spans count; None: always."""
        known = self._heard.get(service)
        if known is None or self._clock() - known[0] > METRICS_WINDOW_SECONDS:
            return None
        return known[1] / 1e9

    def counted_spans(self, services: Iterable[str]) -> None:
        """Note that spans of ``services`` were just counted."""
        now = self._clock()
        for service in services:
            self._spans[service] = now

    def baselines(self, services: Iterable[str]) -> set[str]:
        """The services whose first metrics must only mark the hand-over from their spans."""
        now = self._clock()
        return {
            service
            for service in services
            if self.spans_until(service) is None
            and now - self._spans.get(service, -math.inf) <= METRICS_WINDOW_SECONDS
        }

    def unchecked(self, services: Iterable[str]) -> set[str]:
        """The services for which the store should be asked (again)."""
        now = self._clock()
        return {
            service
            for service in services
            if self.spans_until(service) is None
            and now - self._asked.get(service, -math.inf) > RECHECK_SECONDS
        }

    async def check(self, session: AsyncSession, services: Iterable[str]) -> None:
        """Learn from the store which of ``services`` any replica heard metrics from."""
        wanted = sorted(services)
        now = self._clock()
        for service in wanted:
            self._asked[service] = now
        recent = datetime.fromtimestamp(now - METRICS_WINDOW_SECONDS, UTC)
        query = select(
            IngestStream.service,
            IngestStream.updated_at,
            IngestStream.start_time_unix_nano,
            IngestStream.buckets,
        ).where(IngestStream.service.in_(wanted), IngestStream.updated_at >= recent)
        found: dict[str, tuple[float, int]] = {}
        for service, updated_at, start, buckets in (await session.execute(query)).all():
            instant = int(buckets.get("counted_from", start))
            heard, earliest = found.get(service, (updated_at.timestamp(), instant))
            found[service] = (max(heard, updated_at.timestamp()), min(earliest, instant))
        for service, (heard, instant) in found.items():
            known = self._heard.get(service)
            self._heard[service] = (heard, instant if known is None else min(known[1], instant))
