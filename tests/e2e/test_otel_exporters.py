"""A team points its FastAPI service's OpenTelemetry exporters at Watchkeeper and reads
the service's figures in the analysis.

Everything is real: Watchkeeper served by uvicorn on a loopback port, the shop
instrumented with ``opentelemetry-instrumentation-fastapi``, the OTLP/HTTP span and metric
exporters of ``opentelemetry-exporter-otlp-proto-http`` configured by the two environment
variables the README names (and ``OTEL_SERVICE_NAME``), an ingest token made through the
API. Counts must be exact; quantiles are checked against numpy's exact ones of what the
shop measured: its spans' durations, within the sketch's 0.5%, for traces; the durations
its instrumentation recorded, within the bucket that holds the exact value plus the
sketch's 0.5% (``app/services/performance/otlp/sketches.py``), for explicit-bucket metrics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation._semconv import (
    HTTP_DURATION_HISTOGRAM_BUCKETS_NEW,
    _OpenTelemetrySemanticConventionStability,
)
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from app.core.config import Settings
from app.vocabulary.performance import RequestSource, StatusClass
from app.vocabulary.sketch import RELATIVE_ACCURACY
from tests.conftest import ADMIN_TOKEN, bearer
from tests.e2e.shop import Endpoint, InstrumentedShop, Served, merge, plan_traffic
from tests.e2e.watchkeeper_server import RunningWatchkeeper, serve_watchkeeper

PERFORMANCE = "/api/v1/maintenance/performance"
REQUESTS = 400
# The answers round durations to a microsecond.
ROUNDING_MS = 0.001
BUCKET_BOUNDS_MS = tuple(bound * 1000 for bound in HTTP_DURATION_HISTOGRAM_BUCKETS_NEW)

Interval = Callable[[float], tuple[float, float]]


@pytest.fixture
def otel_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without OTEL_* variables, for each test to set its own."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def export_to(
    monkeypatch: pytest.MonkeyPatch,
    watchkeeper: RunningWatchkeeper,
    token: str,
    service: str,
    *,
    conventions: str | None = None,
) -> None:
    """The shop's OpenTelemetry configuration, as the README gives it, plus its name.

    ``conventions`` is ``OTEL_SEMCONV_STABILITY_OPT_IN``: ``http`` for the stable HTTP
    conventions, whose duration metric carries ``http.route``. The instrumentation reads it
    once per process, so its cache is reset for this test (and restored after it).
    """
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", watchkeeper.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer {token}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    if conventions is not None:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", conventions)
    stability = _OpenTelemetrySemanticConventionStability
    monkeypatch.setattr(stability, "_initialized", False)
    monkeypatch.setattr(stability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})


async def developer_and_ingest_token(watchkeeper: RunningWatchkeeper) -> tuple[str, str]:
    """An admin makes a developer's token and, for the shop's exporters, an ingest token."""
    admin = bearer(ADMIN_TOKEN)
    tokens = []
    async with httpx.AsyncClient(base_url=watchkeeper.url) as http:
        for username, role, kind in (("dana", "developer", "api"), ("shop", "user", "ingest")):
            made = await http.post(
                "/api/v1/users", json={"username": username, "role": role}, headers=admin
            )
            assert made.status_code == 201, made.text
            issued = await http.post(
                f"/api/v1/users/{username}/tokens",
                json={"name": "otel", "kind": kind},
                headers=admin,
            )
            assert issued.status_code == 201, issued.text
            tokens.append(issued.json()["token"])
        refused = await http.get("/api/v1/maintenance/issues", headers=bearer(tokens[1]))
    assert refused.status_code == 403, "an exporter's token must not read the desk"
    return tokens[0], tokens[1]


async def analysis_of(watchkeeper: RunningWatchkeeper, token: str, service: str) -> dict[str, Any]:
    """The last hour's analysis of ``service``, after Watchkeeper stored its minutes."""
    await watchkeeper.flush()
    async with httpx.AsyncClient(base_url=watchkeeper.url) as http:
        answer = await http.get(
            f"{PERFORMANCE}/analysis?hours=1&service={quote(service)}", headers=bearer(token)
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def services_of(watchkeeper: RunningWatchkeeper, token: str) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=watchkeeper.url) as http:
        answer = await http.get(f"{PERFORMANCE}/services", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return {entry["service"]: entry for entry in answer.json()["services"]}


def assert_exporters_were_answered(caplog: pytest.LogCaptureFixture) -> None:
    """No export failed or was retried: the exporters log every refusal."""
    complaints = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("opentelemetry") and record.levelno >= logging.WARNING
    ]
    assert not complaints, complaints


def assert_counts(analysis: dict[str, Any], service: str, served: dict[Endpoint, Served]) -> None:
    """Every endpoint's requests, 4xx and 5xx exactly as served; nothing else."""
    endpoints = {(e["method"], e["route"]): e for e in analysis["endpoints"]}
    assert {e["service"] for e in analysis["endpoints"]} == {service}
    assert {key: e["requests"] for key, e in endpoints.items()} == {
        key: entry.requests for key, entry in served.items()
    }
    for key, entry in served.items():
        figures = endpoints[key]
        requests = figures["requests"]
        assert round(figures["error_rate"] * requests) == entry.classes[StatusClass.SERVER_ERROR]
        assert (
            round(figures["client_error_rate"] * requests)
            == entry.classes[StatusClass.CLIENT_ERROR]
        ), key
    assert analysis["overall"]["requests"] == sum(entry.requests for entry in served.values())


def assert_quantiles(
    analysis: dict[str, Any], served: dict[Endpoint, Served], allowed: Interval
) -> None:
    """p50/p95/p99 overall and per endpoint within ``allowed(exact)`` of numpy's exact ones
    (``method="lower"``, the rank the sketch reports)."""
    endpoints = {(e["method"], e["route"]): e for e in analysis["endpoints"]}
    measured = [(analysis["overall"], np.concatenate([s.durations_ms for s in served.values()]))]
    measured += [(endpoints[key], np.array(entry.durations_ms)) for key, entry in served.items()]
    for figures, durations in measured:
        for name, q in (("median_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
            exact = float(np.percentile(durations, q, method="lower"))
            low, high = allowed(exact)
            assert low <= figures[name] <= high, (name, figures[name], exact, (low, high))


def within_sketch(exact: float) -> tuple[float, float]:
    """The sketch's bound: 0.5% of the exact value."""
    return (
        exact * (1 - RELATIVE_ACCURACY) - ROUNDING_MS,
        exact * (1 + RELATIVE_ACCURACY) + ROUNDING_MS,
    )


def within_bucket(exact: float) -> tuple[float, float]:
    """The explicit-bucket bound: inside the bucket ``(lower, upper]`` holding the exact
    value, plus the sketch's 0.5%. (Half its width from the exact value holds per point;
    an endpoint merges several points, each narrowed to its own minimum and maximum.)"""
    lower = max((b for b in BUCKET_BOUNDS_MS if b < exact), default=0.0)
    upper = min((b for b in BUCKET_BOUNDS_MS if b >= exact), default=None)
    assert upper is not None, "the shop's durations stay below the last bound"
    return (
        lower * (1 - RELATIVE_ACCURACY) - ROUNDING_MS,
        upper * (1 + RELATIVE_ACCURACY) + ROUNDING_MS,
    )


class TestTraces:
    @pytest.mark.parametrize("conventions", [None, "http"], ids=["old-conventions", "stable"])
    async def test_every_request_counted_and_quantiles_within_the_sketch_bound(
        self,
        settings: Settings,
        otel_environment: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        conventions: str | None,
    ) -> None:
        async with serve_watchkeeper(settings) as watchkeeper:
            developer, ingest = await developer_and_ingest_token(watchkeeper)
            export_to(otel_environment, watchkeeper, ingest, "shop", conventions=conventions)
            shop = InstrumentedShop(traces=True, metric_exporter=None)

            served = (await shop.serve(plan_traffic(REQUESTS, seed=11))).by_spans
            await shop.export()
            analysis = await analysis_of(watchkeeper, developer, "shop")
            services = await services_of(watchkeeper, developer)
            await shop.stop()

        assert_exporters_were_answered(caplog)
        assert_counts(analysis, "shop", served)
        assert_quantiles(analysis, served, within_sketch)
        assert services["shop"]["requests_24h"] == REQUESTS
        assert services["shop"]["sources"] == [RequestSource.OTLP_TRACES]
        assert services[settings.self_service_name]["sources"] == [RequestSource.SELF]


class TestMetrics:
    @pytest.mark.parametrize("temporality", ["cumulative", "delta"])
    async def test_every_request_counted_and_quantiles_within_their_bucket(
        self,
        settings: Settings,
        otel_environment: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        temporality: str,
    ) -> None:
        otel_environment.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", temporality)
        async with serve_watchkeeper(settings) as watchkeeper:
            developer, ingest = await developer_and_ingest_token(watchkeeper)
            export_to(otel_environment, watchkeeper, ingest, "shop", conventions="http")
            shop = InstrumentedShop(traces=False, metric_exporter=OTLPMetricExporter())

            first = await shop.serve(plan_traffic(REQUESTS // 2, seed=12))
            await shop.export()
            second = await shop.serve(plan_traffic(REQUESTS // 2, seed=13))
            await shop.export()
            await shop.export()  # nothing new: counts nothing
            analysis = await analysis_of(watchkeeper, developer, "shop")
            services = await services_of(watchkeeper, developer)
            await shop.stop()

        served = merge(first.by_metrics, second.by_metrics)
        assert_exporters_were_answered(caplog)
        assert_counts(analysis, "shop", served)
        assert_quantiles(analysis, served, within_bucket)
        assert services["shop"]["sources"] == [RequestSource.OTLP_METRICS]

    async def test_a_service_sending_metrics_and_traces_is_counted_once(
        self,
        settings: Settings,
        otel_environment: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async with serve_watchkeeper(settings) as watchkeeper:
            developer, ingest = await developer_and_ingest_token(watchkeeper)
            export_to(otel_environment, watchkeeper, ingest, "shop", conventions="http")
            shop = InstrumentedShop(traces=True, metric_exporter=OTLPMetricExporter())

            first = await shop.serve(plan_traffic(REQUESTS // 2, seed=14))
            await shop.export()
            second = await shop.serve(plan_traffic(REQUESTS // 2, seed=15))
            await shop.export()
            analysis = await analysis_of(watchkeeper, developer, "shop")
            await shop.stop()

        assert_exporters_were_answered(caplog)
        assert_counts(analysis, "shop", merge(first.by_metrics, second.by_metrics))


class RoundRobin(MetricExporter):
    """Hands each export to the next replica's exporter, as a load balancer in front of
    several Watchkeepers would."""

    def __init__(self, exporters: Sequence[OTLPMetricExporter]) -> None:
        first = exporters[0]
        # The reader asks its exporter for these; every exporter here was built alike.
        super().__init__(
            preferred_temporality=first._preferred_temporality,
            preferred_aggregation=first._preferred_aggregation,
        )
        self._exporters = exporters
        self.exports = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        exporter = self._exporters[self.exports % len(self._exporters)]
        self.exports += 1
        return exporter.export(metrics_data, timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return all(exporter.force_flush(timeout_millis) for exporter in self._exporters)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        for exporter in self._exporters:
            exporter.shutdown(timeout_millis=timeout_millis)


class TestCumulativeMetricsAcrossReplicas:
    async def test_two_replicas_and_an_exporter_restart_count_every_request_once(
        self,
        settings: Settings,
        otel_environment: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async with (
            serve_watchkeeper(settings) as one,
            serve_watchkeeper(settings) as two,
        ):
            developer, ingest = await developer_and_ingest_token(one)
            export_to(otel_environment, one, ingest, "shop", conventions="http")

            def balanced() -> RoundRobin:
                return RoundRobin(
                    [OTLPMetricExporter(endpoint=f"{wk.url}/v1/metrics") for wk in (one, two)]
                )

            exporters = balanced()
            shop = InstrumentedShop(traces=False, metric_exporter=exporters)
            before = await shop.serve(plan_traffic(150, seed=21))
            await shop.export()  # to one: the stream's first point
            during = await shop.serve(plan_traffic(100, seed=22))
            await shop.export()  # to two: differenced against what one stored
            await shop.export()  # to one: the same totals again, nothing new
            await shop.stop()  # its last export, to two: nothing new either
            assert exporters.exports == 4

            restarted = InstrumentedShop(traces=False, metric_exporter=balanced())
            after = await restarted.serve(plan_traffic(120, seed=23))
            await restarted.export()  # a new start time: counted from zero, never negative
            await restarted.stop()

            await two.flush()
            analysis = await analysis_of(one, developer, "shop")

        assert_exporters_were_answered(caplog)
        served = merge(before.by_metrics, during.by_metrics, after.by_metrics)
        assert_counts(analysis, "shop", served)
