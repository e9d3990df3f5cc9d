"""A watched service exports its SERVER spans to ``POST /v1/traces``, as an unmodified
OpenTelemetry exporter does; Watchkeeper counts each as one request of that service, and
answers what the OTLP/HTTP specification says for every kind of bad export."""

from __future__ import annotations

import gzip
import time

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.trace import SpanKind
from sqlalchemy import distinct, func, select

from app.core.config import Settings
from app.db.models import RequestMinute
from app.db.store import Store
from app.vocabulary.sketch import RELATIVE_ACCURACY
from tests.api.otlp_exporters import (
    JSON,
    METRICS,
    PROTOBUF,
    TRACES,
    MeteredService,
    TracedService,
    endpoints_of,
    failure,
    ingest_token,
    partial_success,
    post_export,
    running,
)


@pytest.fixture
async def exporter(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    return await ingest_token(client, admin_headers)


@pytest.fixture
def shop() -> TracedService:
    return TracedService("shop")


class TestCountingSpans:
    async def test_each_server_span_is_one_request_of_its_route_and_status(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        durations = np.random.default_rng(7).lognormal(np.log(40.0), 0.8, 300)
        for index, duration in enumerate(durations):
            shop.serve(
                "/orders/{id}", duration_ms=float(duration), status=500 if index < 30 else 200
            )
        for _ in range(20):
            shop.serve("/cart", duration_ms=5.0, method="POST", status=404)
        shop.serve(None, duration_ms=1.0)  # no http.route: the unmatched bucket
        shop.serve("/client-call", duration_ms=3.0, kind=SpanKind.CLIENT)  # not a request

        response = await post_export(client, TRACES, shop.export(), exporter)

        assert partial_success(response) == (0, "")
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        orders = endpoints["GET", "/orders/{id}"]
        assert orders["requests"] == 300
        assert orders["error_rate"] == pytest.approx(0.1)
        assert endpoints["POST", "/cart"]["requests"] == 20
        assert endpoints["POST", "/cart"]["client_error_rate"] == 1.0
        assert endpoints["GET", "<unmatched>"]["requests"] == 1
        assert ("GET", "/client-call") not in endpoints
        for quantile, field in ((0.5, "median_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            exact = float(np.quantile(durations, quantile, method="lower"))
            # The sketch's bound, plus the spans' nanosecond rounding and the API's.
            assert abs(orders[field] - exact) <= exact * RELATIVE_ACCURACY + 0.002

    @pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
    @pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
    async def test_every_encoding_counts_the_same(
        self, app: FastAPI, client, admin_headers, exporter, shop, encoding, compressed
    ) -> None:
        for _ in range(7):
            shop.serve("/orders", duration_ms=12.0)

        response = await post_export(
            client, TRACES, shop.export(), exporter, encoding=encoding, compressed=compressed
        )

        assert response.headers["content-type"] == encoding
        assert partial_success(response) == (0, "")
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 7

    async def test_bad_spans_are_refused_by_name_and_the_rest_counted(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        now = time.time_ns()
        shop.serve("/orders", duration_ms=10.0)
        shop.serve("/orders", duration_ms=2 * 86_400_000.0, ended_ns=now)  # two days
        message = shop.export()
        backwards = message.resource_spans[0].scope_spans[0].spans.add()
        backwards.CopyFrom(message.resource_spans[0].scope_spans[0].spans[0])
        backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1

        response = await post_export(client, TRACES, message, exporter)

        rejected, reasons = partial_success(response)
        assert rejected == 2
        assert "1 span: longer than a day" in reasons
        assert "1 span: end before start" in reasons
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 1


class TestBadExports:
    @pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
    async def test_an_undecodable_body_is_400_with_a_status(
        self, client, exporter, encoding
    ) -> None:
        response = await client.post(
            TRACES,
            content=b"\xff\xfe not an export",
            headers={**exporter, "Content-Type": encoding},
        )

        assert response.status_code == 400
        assert response.headers["content-type"] == encoding
        assert failure(response).code == 3  # INVALID_ARGUMENT

    async def test_json_that_is_not_otlp_is_400(self, client, exporter) -> None:
        response = await client.post(TRACES, json={"spans": [1, 2]}, headers=exporter)

        assert response.status_code == 400
        assert "resourceSpans" in failure(response).message

    async def test_another_content_type_is_415(self, client, exporter, shop) -> None:
        shop.serve("/orders", duration_ms=1.0)
        body = shop.export().SerializeToString()

        response = await client.post(
            TRACES, content=body, headers={**exporter, "Content-Type": "text/plain"}
        )

        assert response.status_code == 415
        assert "application/x-protobuf" in failure(response).message

    async def test_an_unknown_content_encoding_is_415(self, client, exporter, shop) -> None:
        shop.serve("/orders", duration_ms=1.0)
        headers = {**exporter, "Content-Type": PROTOBUF, "Content-Encoding": "br"}

        response = await client.post(TRACES, content=b"\x00", headers=headers)

        assert response.status_code == 415

    async def test_a_body_inflating_over_the_limit_is_413(
        self, settings: Settings, client, exporter
    ) -> None:
        bomb = gzip.compress(bytes(settings.ingest_max_inflated_bytes + 1))
        headers = {**exporter, "Content-Type": PROTOBUF, "Content-Encoding": "gzip"}

        response = await client.post(TRACES, content=bomb, headers=headers)

        assert response.status_code == 413
        assert failure(response).code == 8  # RESOURCE_EXHAUSTED

    async def test_exports_may_be_larger_than_api_requests_up_to_their_own_limit(
        self, settings: Settings, client, exporter, shop
    ) -> None:
        shop.serve("/orders", duration_ms=1.0)
        export = shop.export().SerializeToString()
        # An unknown field, which receivers must skip: the body is what makes it large.
        padding = (
            b"\x82\x7d"
            + _varint(2 * settings.max_request_body_bytes)
            + bytes(2 * settings.max_request_body_bytes)
        )
        headers = {**exporter, "Content-Type": PROTOBUF}

        accepted = await client.post(TRACES, content=export + padding, headers=headers)
        too_large = await client.post(
            TRACES, content=bytes(settings.ingest_max_body_bytes + 1), headers=headers
        )

        assert accepted.status_code == 200, accepted.text
        assert too_large.status_code == 413

    async def test_a_store_away_with_a_full_buffer_asks_the_exporter_to_retry(
        self, settings: Settings, admin_headers
    ) -> None:
        small = settings.model_copy(update={"performance_max_buckets": 100})
        async with running(small) as (app, http):
            exporter = await ingest_token(http, admin_headers)
            app.state.request_tracking.flusher.store_available = False  # a flush was refused
            busy = TracedService("busy")
            answers = []
            # Each export a new route: one more bucket held, until the buffer is full.
            for route in range(small.performance_max_buckets + 10):
                busy.serve(f"/r{route}", duration_ms=1.0)
                answers.append(await post_export(http, TRACES, busy.export(), exporter))
                if answers[-1].status_code != 200:
                    break

        response = answers[-1]
        assert len(answers) > small.performance_max_buckets / 2
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert failure(response).code == 14  # UNAVAILABLE


class TestBoundedRoutes:
    async def test_a_hundred_thousand_routes_share_the_unmatched_bucket_past_the_cap(
        self, app: FastAPI, settings: Settings, store_url: str, client, admin_headers, exporter
    ) -> None:
        cap = settings.ingest_max_routes_per_service
        messages = []
        for batch in range(10):
            routes = [f"/users/{batch * 10_000 + n}" for n in range(10_000)]
            response = await client.post(
                TRACES,
                content=_spans("leaky", routes).SerializeToString(),
                headers={**exporter, "Content-Type": PROTOBUF},
            )
            messages.append(partial_success(response)[1])

        endpoints = await endpoints_of(app, client, admin_headers, "leaky")
        assert sum(e["requests"] for e in endpoints.values()) == 100_000
        assert len(endpoints) == cap + 1
        assert endpoints["GET", "<unmatched>"]["requests"] == 100_000 - cap
        assert f"reached its cap of {cap} routes" in messages[0]
        store = Store(store_url)
        async with store.unit_of_work() as session:
            stored = await session.scalar(
                select(func.count(distinct(RequestMinute.route))).where(
                    RequestMinute.service == "leaky"
                )
            )
        await store.dispose()
        assert stored == cap + 1

    async def test_the_cap_remembers_the_stored_routes_after_a_restart(
        self, settings: Settings, admin_headers
    ) -> None:
        capped = settings.model_copy(update={"ingest_max_routes_per_service": 3})
        async with running(capped) as (app, http):
            exporter = await ingest_token(http, admin_headers)
            await http.post(
                TRACES,
                content=_spans("shop", ["/a", "/b", "/c"]).SerializeToString(),
                headers={**exporter, "Content-Type": PROTOBUF},
            )
            await app.state.request_tracking.flusher.flush()
        async with running(capped) as (app, http):
            response = await http.post(
                TRACES,
                content=_spans("shop", ["/d", "/a"]).SerializeToString(),
                headers={**exporter, "Content-Type": PROTOBUF},
            )
            endpoints = await endpoints_of(app, http, admin_headers, "shop")

        assert "reached its cap of 3 routes" in partial_success(response)[1]
        assert {route for _, route in endpoints} == {"/a", "/b", "/c", "<unmatched>"}


class TestTracesAndMetricsOfOneService:
    async def test_spans_after_the_metrics_take_over_are_not_counted_again(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        metered = MeteredService("shop")
        for _ in range(4):
            metered.serve("/orders", duration_ms=20.0)
            shop.serve("/orders", duration_ms=20.0)
        metrics = await post_export(client, METRICS, metered.export(), exporter)
        metered.shutdown()

        traces = await post_export(client, TRACES, shop.export(), exporter)

        assert partial_success(metrics) == (0, "")
        rejected, message = partial_success(traces)
        assert rejected == 0
        assert "4 spans: not counted: the service sends http.server duration metrics" in message
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 4

    async def test_metrics_arriving_after_counted_spans_take_over_without_recounting(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        metered = MeteredService("shop")
        for served in (5, 3):
            for _ in range(served):
                metered.serve("/orders", duration_ms=20.0)
                shop.serve("/orders", duration_ms=20.0)
            # The span processor exports every few seconds, the metric reader every minute.
            await post_export(client, TRACES, shop.export(), exporter)
            await post_export(client, METRICS, metered.export(), exporter)
        metered.serve("/new", duration_ms=20.0)  # a route first seen after the hand-over
        await post_export(client, METRICS, metered.export(), exporter)
        metered.shutdown()

        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 8
        assert endpoints["GET", "/new"]["requests"] == 1


def _spans(service: str, routes: list[str]) -> ExportTraceServiceRequest:
    """One SERVER span per route, built on the generated OTLP classes (the SDK is slower)."""
    end = time.time_ns() - 1_000_000_000
    spans = [
        Span(
            trace_id=bytes(range(1, 17)),
            span_id=bytes(range(1, 9)),
            name="GET",
            kind=Span.SpanKind.SPAN_KIND_SERVER,
            start_time_unix_nano=end - 5_000_000,
            end_time_unix_nano=end,
            attributes=[
                KeyValue(key="http.route", value=AnyValue(string_value=route)),
                KeyValue(key="http.request.method", value=AnyValue(string_value="GET")),
                KeyValue(key="http.response.status_code", value=AnyValue(int_value=200)),
            ],
        )
        for route in routes
    ]
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    return ExportTraceServiceRequest(resource_spans=[resource])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
