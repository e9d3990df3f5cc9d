"""The watched service of the end-to-end stories: a small FastAPI shop, instrumented as its
team would instrument it, and the traffic it serves.

The shop is instrumented with ``opentelemetry-instrumentation-fastapi`` on providers of its
own (never the global ones) and exports with the real OTLP/HTTP exporters, configured by
the ``OTEL_*`` environment alone, as the README tells a team to do. What it measured is
kept too, as the truth the figures in Watchkeeper are checked against: its spans (in
memory), and every duration recorded in ``http.server.request.duration`` (the meter is
watched). The two differ a little: the instrumentation times a request's metric and its
span a few statements apart, and a busy machine may pause the process in between.

Traffic is planned from a fixed seed: four routes with different durations and statuses
(``GET /orders/{order_id}`` answers 404 for every seventh order, ``/missing`` matches no
route), each handler sleeping the planned time.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import numpy as np
from fastapi import FastAPI, HTTPException
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import Attributes

from app.vocabulary.performance import UNMATCHED_ROUTE, StatusClass, status_class

# Exports happen when a test flushes, never on the reader's own timer.
NEVER_MS = 3_600_000.0
CONCURRENCY = 32
UNKNOWN_ORDER_EVERY = 7
DURATION_METRIC = "http.server.request.duration"


def build_shop() -> FastAPI:
    """The shop's routes: each sleeps ``delay_ms`` before answering."""
    shop = FastAPI()

    @shop.get("/orders/{order_id}")
    async def get_order(order_id: int, delay_ms: float) -> dict[str, int]:
        await asyncio.sleep(delay_ms / 1000)
        if order_id % UNKNOWN_ORDER_EVERY == 0:
            raise HTTPException(404, "No such order")
        return {"id": order_id}

    @shop.post("/orders", status_code=201)
    async def create_order(delay_ms: float) -> dict[str, str]:
        await asyncio.sleep(delay_ms / 1000)
        return {"status": "created"}

    @shop.get("/fail")
    async def fail(delay_ms: float) -> None:
        await asyncio.sleep(delay_ms / 1000)
        raise HTTPException(500, "The warehouse is on fire")

    return shop


@dataclass(frozen=True)
class Call:
    """One planned request: what is asked, and the route template it matches."""

    method: str
    path: str
    route: str  # the template, or the unmatched bucket's name
    delay_ms: float


# (method, template, median ms, log-normal sigma, share of the traffic)
PLAN = (
    ("GET", "/orders/{order_id}", 8.0, 0.6, 0.55),
    ("POST", "/orders", 30.0, 0.5, 0.2),
    ("GET", "/fail", 60.0, 0.4, 0.1),
    ("GET", "/missing", 0.0, 0.0, 0.15),
)


def plan_traffic(requests: int, seed: int) -> list[Call]:
    """``requests`` calls over the shop's routes, durations drawn from a fixed seed."""
    rng = np.random.default_rng(seed)
    shares = np.array([share for *_, share in PLAN])
    calls = []
    for choice in rng.choice(len(PLAN), size=requests, p=shares / shares.sum()):
        method, template, median_ms, sigma, _ = PLAN[choice]
        delay_ms = float(median_ms * np.exp(sigma * rng.standard_normal()))
        if template == "/orders/{order_id}":
            path, route = f"/orders/{rng.integers(1, 10_000)}", template
        elif template == "/missing":
            path, route = template, UNMATCHED_ROUTE
        else:
            path, route = template, template
        calls.append(Call(method, f"{path}?delay_ms={delay_ms:.3f}", route, delay_ms))
    return calls


Endpoint = tuple[str, str]  # method, route


@dataclass
class Served:
    """What the shop served on one endpoint: responses per status class, and durations."""

    classes: Counter[StatusClass] = field(default_factory=Counter)
    durations_ms: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.classes.values())


async def drive(app: FastAPI, calls: Sequence[Call]) -> Counter[tuple[str, str, StatusClass]]:
    """Sends every call to ``app`` (a few at a time); counts the answers per endpoint."""
    answered: Counter[tuple[str, str, StatusClass]] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:

        async def send(call: Call) -> None:
            async with gate:
                response = await client.request(call.method, call.path)
            answered[call.method, call.route, status_class(response.status_code)] += 1

        await asyncio.gather(*(send(call) for call in calls))
    return answered


Measurement = tuple[Attributes, float]  # a request's HTTP attributes and its duration in ms


def served_from(measurements: Sequence[Measurement]) -> dict[Endpoint, Served]:
    """Measured requests by endpoint, named by their attributes (either conventions)."""
    served: dict[Endpoint, Served] = defaultdict(Served)
    for attributes, duration_ms in measurements:
        found = attributes or {}
        method = found.get("http.request.method", found.get("http.method"))
        status = found.get("http.response.status_code", found.get("http.status_code"))
        route = found.get("http.route", UNMATCHED_ROUTE)
        assert isinstance(method, str) and isinstance(status, int) and isinstance(route, str)
        entry = served[method, route]
        entry.classes[status_class(status)] += 1
        entry.durations_ms.append(duration_ms)
    return dict(served)


def span_measurements(spans: Sequence[ReadableSpan]) -> list[Measurement]:
    """The SERVER spans' attributes and durations."""
    found = []
    for span in spans:
        if span.kind is SpanKind.SERVER:
            assert span.start_time is not None and span.end_time is not None
            found.append((span.attributes, (span.end_time - span.start_time) / 1e6))
    return found


class _WatchedHistogram:
    """A histogram that also notes every value recorded in it."""

    def __init__(self, histogram: Any, sink: list[Measurement]) -> None:
        self._histogram = histogram
        self._sink = sink

    def record(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._sink.append((dict(attributes or {}), amount * 1000))
        self._histogram.record(amount, attributes, context)


class _WatchedMeter:
    """A meter whose request-duration histogram is watched; everything else as it is."""

    def __init__(self, meter: Meter, sink: list[Measurement]) -> None:
        self._meter = meter
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meter, name)

    def create_histogram(self, name: str, *args: Any, **kwargs: Any) -> Any:
        histogram = self._meter.create_histogram(name, *args, **kwargs)
        return _WatchedHistogram(histogram, self._sink) if name == DURATION_METRIC else histogram


class WatchedMeterProvider(MeterProvider):
    """The SDK's meter provider; the durations its meters record go to ``durations`` too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.durations: list[Measurement] = []

    def get_meter(self, *args: Any, **kwargs: Any) -> Meter:
        return cast(Meter, _WatchedMeter(super().get_meter(*args, **kwargs), self.durations))


@dataclass(frozen=True)
class Measured:
    """What the shop served, as its spans and as its duration metric measured it."""

    by_spans: dict[Endpoint, Served]
    by_metrics: dict[Endpoint, Served]


class InstrumentedShop:
    """One running instance of the shop with its telemetry pipeline.

    ``traces``: its spans go to the OTLP span exporter (batched). ``metric_exporter``: its
    metrics go there through a periodic reader (none: no metrics are exported). Either
    way its spans are kept in memory too.
    """

    def __init__(self, *, traces: bool, metric_exporter: MetricExporter | None) -> None:
        resource = Resource.create()  # service.name from OTEL_SERVICE_NAME
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        if traces:
            self.tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers = []
        if metric_exporter is not None:
            readers.append(
                PeriodicExportingMetricReader(metric_exporter, export_interval_millis=NEVER_MS)
            )
        self.meter_provider = WatchedMeterProvider(resource=resource, metric_readers=readers)
        self.app = build_shop()
        FastAPIInstrumentor.instrument_app(
            self.app, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    async def serve(self, calls: Sequence[Call]) -> Measured:
        """Serves ``calls``; what it measured (checked against the answers it gave)."""
        spans_before = len(self.spans.get_finished_spans())
        metrics_before = len(self.meter_provider.durations)
        answered = await drive(self.app, calls)
        measured = Measured(
            served_from(span_measurements(self.spans.get_finished_spans()[spans_before:])),
            served_from(self.meter_provider.durations[metrics_before:]),
        )
        for source in (measured.by_spans, measured.by_metrics):
            counted = Counter(
                {(m, r, c): n for (m, r), entry in source.items() for c, n in entry.classes.items()}
            )
            # The stable duration metric is recorded only under the stable conventions.
            assert counted == answered or (source is measured.by_metrics and not source)
        return measured

    async def export(self) -> None:
        """Sends everything recorded so far, as the exporters' timers would."""
        assert await asyncio.to_thread(self.tracer_provider.force_flush)
        assert await asyncio.to_thread(self.meter_provider.force_flush)

    async def stop(self) -> None:
        """Shuts the providers down (their last export included), as the process exits."""
        await asyncio.to_thread(self.tracer_provider.shutdown)
        await asyncio.to_thread(self.meter_provider.shutdown)


def merge(*parts: dict[Endpoint, Served]) -> dict[Endpoint, Served]:
    """Several runs' served requests as one."""
    total: dict[Endpoint, Served] = defaultdict(Served)
    for part in parts:
        for endpoint, entry in part.items():
            total[endpoint].classes.update(entry.classes)
            total[endpoint].durations_ms.extend(entry.durations_ms)
    return dict(total)
