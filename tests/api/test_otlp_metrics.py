"""A watched service exports its ``http.server.request.duration`` histogram to
``POST /v1/metrics``; Watchkeeper counts every request once, whichever replica takes each
export, whatever the temporality, across exporter restarts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

from app.core.config import Settings
from tests.api.otlp_exporters import (
    JSON,
    METRICS,
    PROTOBUF,
    MeteredService,
    endpoints_of,
    ingest_token,
    partial_success,
    post_export,
    running,
)


@pytest.fixture
async def exporter(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    return await ingest_token(client, admin_headers)


@pytest.fixture
def shop() -> Iterator[MeteredService]:
    service = MeteredService("shop")
    yield service
    service.shutdown()


def serve(
    service: MeteredService, requests: int, *, duration_ms: float = 30.0, status: int = 200
) -> None:
    for _ in range(requests):
        service.serve("/orders", duration_ms=duration_ms, status=status)


class TestCumulativeExports:
    async def test_three_successive_exports_count_each_request_once(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        for requests in (10, 5, 7):
            serve(shop, requests)
            serve(shop, 1, status=503)
            response = await post_export(client, METRICS, shop.export(), exporter)
            assert partial_success(response) == (0, "")

        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        orders = endpoints["GET", "/orders"]
        assert orders["requests"] == 25
        assert orders["error_rate"] == pytest.approx(3 / 25)

    async def test_an_export_with_no_new_requests_adds_nothing(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        serve(shop, 4)
        await post_export(client, METRICS, shop.export(), exporter)

        again = await post_export(client, METRICS, shop.export(), exporter)

        assert partial_success(again) == (0, "")
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 4

    async def test_exponential_histograms_count_once_as_their_scale_coarsens(
        self, app: FastAPI, client, admin_headers, exporter
    ) -> None:
        service = MeteredService("shop", aggregation=ExponentialBucketHistogramAggregation())
        serve(service, 6, duration_ms=10.0)
        serve(service, 6, duration_ms=11.0)
        await post_export(client, METRICS, service.export(), exporter)
        # Durations a thousand times apart make the SDK lower the histogram's scale.
        serve(service, 5, duration_ms=10_000.0)
        response = await post_export(client, METRICS, service.export(), exporter)
        service.shutdown()

        assert partial_success(response) == (0, "")
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        orders = endpoints["GET", "/orders"]
        assert orders["requests"] == 17
        assert orders["max_ms"] == pytest.approx(10_000.0, rel=0.01)

    async def test_an_exporter_restart_counts_afresh(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        serve(shop, 8)
        await post_export(client, METRICS, shop.export(), exporter)
        restarted = MeteredService("shop")  # the same stream, a new start time
        serve(restarted, 3)

        response = await post_export(client, METRICS, restarted.export(), exporter)
        restarted.shutdown()

        assert partial_success(response) == (0, "")
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 11

    async def test_an_older_point_is_refused_by_name(
        self, app: FastAPI, client, admin_headers, exporter, shop
    ) -> None:
        serve(shop, 2)
        first = shop.export()
        serve(shop, 3)
        await post_export(client, METRICS, shop.export(), exporter)

        late = await post_export(client, METRICS, first, exporter)

        assert partial_success(late) == (1, "1 data point: older than its stream's last point")
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 5

    @pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
    @pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
    async def test_every_encoding_counts_the_same(
        self, app: FastAPI, client, admin_headers, exporter, shop, encoding, compressed
    ) -> None:
        for requests in (3, 4):
            serve(shop, requests)
            response = await post_export(
                client, METRICS, shop.export(), exporter, encoding=encoding, compressed=compressed
            )
            assert response.headers["content-type"] == encoding
            assert partial_success(response) == (0, "")

        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 7


class TestReplicas:
    async def test_two_replicas_taking_turns_count_each_request_once(
        self, settings: Settings, admin_headers, shop
    ) -> None:
        async with running(settings) as (one, first), running(settings) as (two, second):
            exporter = await ingest_token(first, admin_headers)
            for turn in range(6):
                serve(shop, turn + 1)
                http = (first, second)[turn % 2]
                response = await post_export(http, METRICS, shop.export(), exporter)
                assert partial_success(response) == (0, "")
            await one.state.request_tracking.flusher.flush()
            endpoints = await endpoints_of(two, second, admin_headers, "shop")

        assert endpoints["GET", "/orders"]["requests"] == 21

    async def test_a_restarted_watchkeeper_continues_each_stream(
        self, settings: Settings, admin_headers, shop
    ) -> None:
        async with running(settings) as (app, http):
            exporter = await ingest_token(http, admin_headers)
            serve(shop, 9)
            await post_export(http, METRICS, shop.export(), exporter)
        async with running(settings) as (app, http):
            serve(shop, 2)
            await post_export(http, METRICS, shop.export(), exporter)
            endpoints = await endpoints_of(app, http, admin_headers, "shop")

        assert endpoints["GET", "/orders"]["requests"] == 11


class TestDeltaExports:
    async def test_each_delta_point_counts_as_sent_and_a_retry_does_not(
        self, app: FastAPI, client, admin_headers, exporter
    ) -> None:
        service = MeteredService("shop", temporality=AggregationTemporality.DELTA)
        serve(service, 6)
        await post_export(client, METRICS, service.export(), exporter)
        serve(service, 4)
        second = service.export()
        await post_export(client, METRICS, second, exporter)
        service.shutdown()

        retried = await post_export(client, METRICS, second, exporter)

        rejected, message = partial_success(retried)
        assert rejected == 1
        assert "a retry already counted" in message
        endpoints = await endpoints_of(app, client, admin_headers, "shop")
        assert endpoints["GET", "/orders"]["requests"] == 10
