"""What the OTLP receiver's stories share: a watched service's exports, built by the
OpenTelemetry SDK's own providers and encoders, posted as an exporter posts them, and the
figures Watchkeeper then answers for that service.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import (
    Aggregation,
    ExplicitBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.core.config import Settings
from app.main import create_app
from tests.conftest import bearer

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACES = "/v1/traces"
METRICS = "/v1/metrics"
ANALYSIS = "/api/v1/maintenance/performance/analysis"
MS = 1_000_000
# The OpenTelemetry SDK's default boundaries for http.server.request.duration, in seconds.
BOUNDARIES_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


async def ingest_token(
    client: httpx.AsyncClient, admin_headers: dict[str, str], username: str = "exporter"
) -> dict[str, str]:
    """The headers of an exporter holding an ingest token, issued through the API."""
    created = await client.post(
        "/api/v1/users", json={"username": username, "role": "user"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    issued = await client.post(
        f"/api/v1/users/{username}/tokens",
        json={"name": "otel exporter", "kind": "ingest"},
        headers=admin_headers,
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["kind"] == "ingest"
    return bearer(issued.json()["token"])


class TracedService:
    """A service whose finished spans are kept until exported."""

    def __init__(self, name: str = "shop") -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource({"service.name": name}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests.otlp")

    def serve(
        self,
        route: str | None,
        *,
        duration_ms: float,
        status: int = 200,
        method: str = "GET",
        kind: SpanKind = SpanKind.SERVER,
        ended_ns: int | None = None,
    ) -> None:
        """One request served, ending ``ended_ns`` (default: now)."""
        end = ended_ns if ended_ns is not None else time.time_ns()
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "http.response.status_code": status,
        }
        if route is not None:
            attributes["http.route"] = route
        span = self.tracer.start_span(
            f"{method} {route}",
            kind=kind,
            attributes=attributes,
            start_time=end - round(duration_ms * MS),
        )
        span.end(end_time=end)

    def export(self) -> ExportTraceServiceRequest:
        """The export of every span finished since the last one."""
        message = encode_spans(self.exporter.get_finished_spans())
        self.exporter.clear()
        return message


class MeteredService:
    """A service with an ``http.server.request.duration`` histogram, collected by hand."""

    def __init__(
        self,
        name: str = "shop",
        *,
        temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE,
        aggregation: Aggregation | None = None,
        instance: str = "shop-1",
    ) -> None:
        self.reader = InMemoryMetricReader(preferred_temporality={Histogram: temporality})
        view = View(
            instrument_name="http.server.*",
            aggregation=aggregation or ExplicitBucketHistogramAggregation(BOUNDARIES_S),
        )
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource({"service.name": name, "service.instance.id": instance}),
            views=[view],
        )
        self.durations = self.provider.get_meter("tests.otlp").create_histogram(
            "http.server.request.duration", unit="s"
        )

    def serve(self, route: str, *, duration_ms: float, status: int = 200) -> None:
        self.durations.record(
            duration_ms / 1000,
            {
                "http.route": route,
                "http.request.method": "GET",
                "http.response.status_code": status,
            },
        )

    def export(self) -> ExportMetricsServiceRequest:
        """What the exporter would send now (cumulative: every request since start)."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return encode_metrics(data)

    def shutdown(self) -> None:
        self.provider.shutdown()


def otlp_json(message: Message) -> bytes:
    """The OTLP/JSON encoding: camelCase, enums as integers, trace and span ids in hex."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)

    def hex_ids(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hex_ids(value)
        elif isinstance(node, list):
            for item in node:
                hex_ids(item)

    hex_ids(document)
    return json.dumps(document).encode()


async def post_export(
    client: httpx.AsyncClient,
    path: str,
    message: Message,
    headers: Mapping[str, str],
    *,
    encoding: str = PROTOBUF,
    compressed: bool = False,
) -> httpx.Response:
    """Post ``message`` as an OTLP/HTTP exporter does."""
    body = message.SerializeToString() if encoding == PROTOBUF else otlp_json(message)
    sent = {**headers, "Content-Type": encoding}
    if compressed:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    return await client.post(path, content=body, headers=sent)


def partial_success(response: httpx.Response) -> tuple[int, str]:
    """(rejected, error_message) of an export's answer, in whichever encoding it came."""
    assert response.status_code == 200, response.text
    traces = response.request.url.path == TRACES
    answer: Any = ExportTraceServiceResponse() if traces else ExportMetricsServiceResponse()
    if response.headers["content-type"] == PROTOBUF:
        answer.ParseFromString(response.content)
    else:
        json_format.Parse(response.text, answer)
    partial = answer.partial_success
    rejected = partial.rejected_spans if traces else partial.rejected_data_points
    return rejected, partial.error_message


def failure(response: httpx.Response) -> Any:
    """The google.rpc.Status of an error answer, in whichever encoding it came."""
    status = Status()
    if response.headers["content-type"] == PROTOBUF:
        status.ParseFromString(response.content)
    else:
        json_format.Parse(response.text, status)
    return status


async def endpoints_of(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], service: str
) -> dict[tuple[str, str], dict[str, Any]]:
    """The service's endpoints in the analysis of the last hour, once everything is stored."""
    await app.state.request_tracking.flusher.flush()
    response = await client.get(
        ANALYSIS, params={"hours": 1, "service": service}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    return {(e["method"], e["route"]): e for e in response.json()["endpoints"]}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Another Watchkeeper process on the same settings (a replica, or a restart)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://watchkeeper") as http:
            yield app, http
