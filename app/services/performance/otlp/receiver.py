"""The OTLP/HTTP receiver: exports of a watched service turned into its per-minute figures.

``POST /v1/traces`` and ``POST /v1/metrics`` hand :class:`OtlpReceiver` the raw body and
its ``Content-Type`` and ``Content-Encoding``; it answers an encoded
``Export*ServiceResponse`` (:mod:`.responses`) or raises one of our errors (400 undecodable,
413 inflating over the limit, 415 another encoding, 503 while it cannot take figures).

Traces: every SERVER span is one request counted in the recorder, as our own middleware
counts Watchkeeper's, its trace id kept for the exemplar; nothing else is stored. Metrics:
each point's new requests (:mod:`.streams`, against the stored state of its stream) are
merged into the recorder as a sketch with an exact count, after the state is committed, so
an export that fails is retried by the exporter and counted once. Both pass every route
through the service's :class:`~.routes.RouteBudget`; a service's spans stop counting where
its duration metrics take over (:class:`~.routes.MetricsSenders` says how).

When the store is away, the recorder keeps the figures in memory until it is full; then
the receiver answers 503 with ``Retry-After`` (OTLP exporters retry on it) rather than
accept figures it would drop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar

from sqlalchemy.exc import IntegrityError
from watchkeeper_agent.recorder import RequestRecorder

from app.core.config import Settings
from app.core.errors import WatchkeeperError
from app.db.store import Store
from app.services.performance.flusher import MetricsFlusher, RequestTracking
from app.services.performance.otlp import streams
from app.services.performance.otlp.common import Tally, inflate, media_type
from app.services.performance.otlp.metrics import HistogramPoint, decode_metrics
from app.services.performance.otlp.responses import OtlpAnswer, metrics_answer, traces_answer
from app.services.performance.otlp.routes import MetricsSenders, RouteBudget
from app.services.performance.otlp.span_buckets import bucketed
from app.services.performance.otlp.traces import ServedRequest, decode_traces
from app.vocabulary.performance import UNMATCHED_ROUTE, RequestSource, status_class

# Replicas racing for one stream settle in one retry; more means something else is wrong.
_ATTEMPTS: Final = 3
COUNTED_BY_METRICS: Final = "not counted: the service sends http.server duration metrics, which win"

Decoded = TypeVar("Decoded")


class IngestPaused(WatchkeeperError):
    """The receiver cannot take figures now; the exporter should retry after a while."""

    status_code = 503

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(retry_after, 1))})


def over_cap(service: str, cap: int) -> str:
    """The warning for requests of routes beyond a service's cap."""
    return f"service {service!r} reached its cap of {cap} routes; further routes counted unmatched"


class OtlpReceiver:
    """Takes OTLP trace and metric exports into the recorder of received services."""

    def __init__(
        self,
        store: Store,
        recorder: RequestRecorder,
        flusher: MetricsFlusher,
        *,
        max_inflated_bytes: int,
        max_routes: int,
        senders: MetricsSenders | None = None,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._flusher = flusher
        self._max_inflated_bytes = max_inflated_bytes
        self._routes = RouteBudget(max_routes)
        self._senders = senders or MetricsSenders()

    @property
    def route_budget(self) -> RouteBudget:
        """The per-service route cap, shared with every other receiver of figures."""
        return self._routes

    @classmethod
    def from_settings(
        cls, store: Store, tracking: RequestTracking, settings: Settings
    ) -> OtlpReceiver:
        """A receiver feeding ``tracking``'s recorder, limited as the settings say."""
        return cls(
            store,
            tracking.recorder,
            tracking.flusher,
            max_inflated_bytes=settings.ingest_max_inflated_bytes,
            max_routes=settings.ingest_max_routes_per_service,
        )

    async def traces(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> OtlpAnswer:
        """Count the SERVER spans of a trace export; the answer to send back."""
        media = self._admit(content_type)
        export = await self._decoded(decode_traces, body, content_type, content_encoding)
        services = {request.service for request in export.requests}
        await self._learn(services)
        # Spans ending from this instant on are counted by the service's metrics.
        until = {service: self._senders.spans_until(service) for service in services}
        warnings = Tally("span")
        requests = export.requests
        if any(limit is not None for limit in until.values()):
            requests = tuple(request for request in requests if not _after(request, until))
            if skipped := len(export.requests) - len(requests):
                warnings.warn(COUNTED_BY_METRICS, skipped)
        counted = {request.service for request in requests}
        names = _RouteNames(self._routes, warnings)
        recorder = self._recorder
        for bucket in bucketed(requests, recorder.exemplars_per_bucket):
            recorder.record_sketch(
                service=bucket.service,
                source=RequestSource.OTLP_TRACES,
                route=names.of(bucket.service, bucket.route, bucket.sketch.count),
                method=bucket.method,
                status_class=status_class(bucket.status_code),
                at=bucket.minute * 60.0,
                sketch=bucket.sketch,
                exemplars=bucket.slowest,
            )
        self._senders.counted_spans(counted)
        return traces_answer(export.rejected, _message(export.reasons, warnings), media)

    async def metrics(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> OtlpAnswer:
        """Count the new requests of a metric export's duration histograms; the answer."""
        media = self._admit(content_type)
        export = await self._decoded(decode_metrics, body, content_type, content_encoding)
        refused = Tally("data point")
        if export.points:
            advance = await self._advance(export.points)
            for reason, count in advance.refused.items():
                refused.reject(reason, count)
            names = _RouteNames(self._routes, refused)
            for point in advance.new:
                self._recorder.record_sketch(
                    service=point.service,
                    source=RequestSource.OTLP_METRICS,
                    route=names.of(point.service, point.route),
                    method=point.method,
                    status_class=status_class(point.status_code),
                    at=point.time_unix_nano / 1e9,
                    sketch=point.sketch(),
                )
            self._senders.heard(advance.counted_from)
        return metrics_answer(
            export.rejected + refused.rejected, _message(export.reasons, refused), media
        )

    def _admit(self, content_type: str | None) -> str:
        """The request's encoding; IngestPaused while the figures would have to be dropped."""
        media = media_type(content_type)
        if not self._flusher.store_available and self._recorder.is_full:
            raise IngestPaused(
                "The store is unavailable and the receiver's buffer is full; retry later",
                retry_after=math.ceil(self._flusher.flush_seconds),
            )
        return media

    async def _decoded(
        self,
        decode: Callable[[bytes, str | None], Decoded],
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
    ) -> Decoded:
        # Inflating and parsing a large export takes a while: not on the event loop.
        def work() -> Decoded:
            return decode(inflate(body, content_encoding, self._max_inflated_bytes), content_type)

        return await asyncio.to_thread(work)

    async def _learn(self, services: Iterable[str]) -> None:
        """Read what the store knows of services new to this process (rarely: cached)."""
        unknown = self._routes.unknown(services)
        unchecked = self._senders.unchecked(services)
        if unknown or unchecked:
            async with self._store.unit_of_work() as session:
                await self._routes.load(session, unknown)
                await self._senders.check(session, unchecked)

    async def _advance(self, points: Sequence[HistogramPoint]) -> streams.Advance:
        """The points' new requests, their streams' state committed (retried on a race)."""
        services = {point.service for point in points}
        for _ in range(_ATTEMPTS):
            try:
                async with self._store.unit_of_work() as session:
                    await self._routes.load(session, self._routes.unknown(services))
                    baselines = self._senders.baselines(services)
                    if baselines:  # another replica may have taken the hand-over already
                        await self._senders.check(session, baselines)
                        baselines = self._senders.baselines(baselines)
                    return await streams.advance(session, points, baselines=baselines)
            except (streams.StreamRace, IntegrityError):
                continue  # another replica took a point of these streams: read them again
        raise IngestPaused(
            "Other replicas keep changing these metric streams; retry the export", retry_after=1
        )


class _RouteNames:
    """The name each (service, route) of one export is counted under, looked up once."""

    __slots__ = ("_names", "_routes", "_warnings")

    def __init__(self, routes: RouteBudget, warnings: Tally) -> None:
        self._routes = routes
        self._warnings = warnings
        self._names: dict[tuple[str, str | None], tuple[str, bool]] = {}

    def of(self, service: str, route: str | None, requests: int = 1) -> str:
        """The route to count ``requests`` under: the route itself, or unmatched past the cap."""
        key = (service, route)
        known = self._names.get(key)
        if known is None:
            admitted = route is None or self._routes.admit(service, route)
            known = self._names[key] = (
                route if route is not None and admitted else UNMATCHED_ROUTE,
                not admitted,
            )
        name, capped = known
        if capped:
            self._warnings.warn(over_cap(service, self._routes.cap), requests)
        return name


def _after(request: ServedRequest, until: dict[str, float | None]) -> bool:
    """Whether the request ended when its service's metrics already count it."""
    limit = until[request.service]
    return limit is not None and request.ended_at >= limit


def _message(reasons: Sequence[str], more: Tally) -> str:
    """The decoder's reasons and the receiver's, as one ``error_message``."""
    return "; ".join((*reasons, *more.reasons()))
