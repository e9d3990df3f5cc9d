"""The services a team runs, side by side: requests of ``shop`` and ``billing`` received as
a receiver hands them to the recorder (spans one by one, histograms as sketches), next to
Watchkeeper's own; every answer names each endpoint's service, and ``service`` narrows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from watchkeeper_agent.recorder import RequestRecorder

from app.core.config import Settings
from app.main import create_app
from app.vocabulary.performance import RequestSource, StatusClass
from app.vocabulary.sketch import RELATIVE_ACCURACY, QuantileSketch
from tests.api.maintenance.test_performance_alerts import firing, running
from tests.conftest import ADMIN_TOKEN, bearer

PERFORMANCE = "/api/v1/maintenance/performance"
NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
SERVED = NOW - timedelta(minutes=10)
ORDER = "/orders/{order_id}"
# shop's slow order page: 30 spans of 2.1 s and more, 3 of them failed.
ORDER_MS = [2100.0 + 10 * i for i in range(30)]


def shop_and_billing(recorder: RequestRecorder, at: float) -> None:
    """shop's traced order page and its cart's histogram, billing's invoices from the agent."""
    for i, duration in enumerate(ORDER_MS):
        recorder.record(
            ORDER,
            "GET",
            500 if i < 3 else 200,
            duration,
            f"trace-{i}",
            at,
            service="shop",
            source=RequestSource.OTLP_TRACES,
        )
    recorder.record_sketch(
        service="shop",
        source=RequestSource.OTLP_METRICS,
        route="/cart",
        method="POST",
        status_class=StatusClass.SUCCESS,
        at=at,
        sketch=QuantileSketch.of([20.0] * 200),
    )
    for _ in range(12):
        recorder.record(
            "/invoices", "GET", 200, 40.0, at=at, service="billing", source=RequestSource.AGENT
        )


@pytest.fixture
async def served(app: FastAPI) -> FastAPI:
    """Ten minutes ago shop and billing served their requests; they are stored now."""
    app.state.clock = lambda: NOW
    tracking = app.state.request_tracking
    shop_and_billing(tracking.recorder, SERVED.timestamp())
    await tracking.flusher.flush()
    return app


def by_name(endpoints: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{e['service']} {e['method']} {e['route']}": e for e in endpoints}


@pytest.mark.usefixtures("served")
class TestAnalysis:
    async def test_one_service_shows_only_its_endpoints_with_exact_counts(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/analysis", params={"service": "shop"}, headers=admin_headers
        )

        assert response.status_code == 200, response.text
        body = response.json()
        endpoints = by_name(body["endpoints"])
        assert set(endpoints) == {f"shop GET {ORDER}", "shop POST /cart"}
        order = endpoints[f"shop GET {ORDER}"]
        assert order["requests"] == 30
        assert order["error_rate"] == pytest.approx(0.1)
        assert abs(order["max_ms"] - max(ORDER_MS)) < 0.001
        assert endpoints["shop POST /cart"]["requests"] == 200
        assert body["overall"]["requests"] == 230

    async def test_every_service_without_a_filter_each_endpoint_named_by_its_service(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(f"{PERFORMANCE}/analysis", headers=admin_headers)

        endpoints = by_name(response.json()["endpoints"])
        assert {
            f"shop GET {ORDER}": 30,
            "shop POST /cart": 200,
            "billing GET /invoices": 12,
        } == {name: endpoints[name]["requests"] for name in endpoints if "watchkeeper" not in name}
        assert response.json()["overall"]["requests"] == 242

    async def test_several_services_are_asked_for_by_repeating_the_parameter(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/analysis",
            params=[("service", "shop"), ("service", "billing")],
            headers=admin_headers,
        )

        assert {e["service"] for e in response.json()["endpoints"]} == {"shop", "billing"}
        assert response.json()["overall"]["requests"] == 242

    async def test_a_service_never_seen_has_no_requests_and_says_so(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/analysis", params={"service": "ghost"}, headers=admin_headers
        )

        assert response.status_code == 200
        assert response.json()["endpoints"] == []
        assert "No requests of ghost" in response.json()["note"]


@pytest.mark.usefixtures("served")
class TestServices:
    async def test_each_service_seen_with_its_day_and_its_sources(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(f"{PERFORMANCE}/services", headers=admin_headers)

        assert response.status_code == 200, response.text
        services = {s["service"]: s for s in response.json()["services"]}
        shop, billing = services["shop"], services["billing"]
        assert shop["sources"] == ["otlp-metrics", "otlp-traces"]
        assert billing["sources"] == ["agent"]
        assert (shop["requests_24h"], billing["requests_24h"]) == (230, 12)
        assert shop["error_rate_24h"] == pytest.approx(3 / 230, abs=1e-6)
        assert billing["error_rate_24h"] == 0
        # 95% of shop's requests are its 200 cart posts and the fastest order pages.
        exact_p95 = sorted([20.0] * 200 + ORDER_MS)[int(0.95 * 229)]
        assert abs(shop["p95_ms_24h"] - exact_p95) <= exact_p95 * RELATIVE_ACCURACY + 0.001
        minute = SERVED.replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")
        assert (shop["first_seen"], shop["last_seen"]) == (minute, minute)

    async def test_only_staff_see_the_services(
        self, client: httpx.AsyncClient, make_account: Any
    ) -> None:
        reporter = await make_account("rita")

        response = await client.get(f"{PERFORMANCE}/services", headers=reporter.headers)

        assert response.status_code == 403


@pytest.mark.usefixtures("served")
class TestBottlenecksAndAdvice:
    async def test_the_slow_endpoint_of_shop_is_a_bottleneck_that_names_shop(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(f"{PERFORMANCE}/bottlenecks?days=1", headers=admin_headers)

        assert response.status_code == 200, response.text
        [slow] = [b for b in response.json()["bottlenecks"] if b["kind"] == "slow_endpoint"]
        assert slow["service"] == "shop"
        assert slow["target"] == f"shop GET {ORDER}"
        assert slow["message"].startswith(f"shop GET {ORDER}: p95")
        assert slow["evidence"]["service"] == "shop"

    async def test_its_recommendation_names_shop(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/recommendations",
            params={"days": 1, "service": "shop"},
            headers=admin_headers,
        )

        advice = {r["bottleneck"]: r for r in response.json()["recommendations"]}
        assert advice["slow_endpoint"]["service"] == "shop"
        assert f"shop GET {ORDER}" in advice["slow_endpoint"]["title"]
        assert advice["high_error_rate"]["description"].startswith(f"shop GET {ORDER} failed 3")

    async def test_another_service_has_none_of_shops_bottlenecks(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/bottlenecks",
            params={"days": 1, "service": "billing"},
            headers=admin_headers,
        )

        assert response.json()["bottlenecks"] == []


@pytest.mark.usefixtures("served")
class TestTrendsAndObjectives:
    async def test_trends_name_each_endpoint_by_service(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/trends", params={"service": "billing"}, headers=admin_headers
        )

        assert response.status_code == 200, response.text
        [invoices] = response.json()["endpoints"]
        assert (invoices["service"], invoices["route"]) == ("billing", "/invoices")
        assert invoices["periods"][-1]["requests"] == 12

    async def test_the_response_time_objective_is_judged_on_the_services_asked_for(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        async def response_time(service: str) -> dict[str, Any]:
            report = await client.get(
                "/api/v1/maintenance/slo", params={"service": service}, headers=admin_headers
            )
            assert report.status_code == 200, report.text
            return next(c for c in report.json()["criteria"] if c["name"] == "response_time")

        billing, shop = await response_time("billing"), await response_time("shop")

        # billing answers in 40 ms; shop's order pages are 13% of its requests, all over 2 s.
        assert billing["met"] is True
        assert shop["met"] is False
        assert "of 230 requests of shop" in shop["detail"]


class TestBadServiceNames:
    @pytest.mark.parametrize(
        "params",
        [
            {"service": "x" * 129},
            {"service": "shop\nX-Injected: 1"},
            {"service": "shop\x1b[31m"},
            {"service": ""},
            [("service", f"s{i}") for i in range(51)],
        ],
        ids=["too-long", "newline", "escape", "empty", "too-many"],
    )
    @pytest.mark.parametrize(
        "path",
        [
            f"{PERFORMANCE}/analysis",
            f"{PERFORMANCE}/bottlenecks",
            f"{PERFORMANCE}/recommendations",
            f"{PERFORMANCE}/trends",
            "/api/v1/maintenance/slo",
        ],
    )
    async def test_each_is_refused_with_a_clear_422(
        self,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
        path: str,
        params: Any,
    ) -> None:
        response = await client.get(path, params=params, headers=admin_headers)

        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][:2] == ["query", "service"]

    async def test_a_nul_is_refused_before_any_endpoint_reads_it(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.get(
            f"{PERFORMANCE}/analysis", params={"service": "shop\x00"}, headers=admin_headers
        )

        assert response.status_code == 400
        assert "NUL" in response.json()["detail"]


class TestPerServiceAlerts:
    async def test_a_slow_service_alerts_on_its_own_name(self, settings: Settings) -> None:
        async with running(settings) as desk:
            tracking = desk.app.state.request_tracking
            for _ in range(60):
                tracking.recorder.record(
                    ORDER, "GET", 200, 3000.0, service="shop", source=RequestSource.OTLP_TRACES
                )
                tracking.recorder.record(
                    "/invoices", "GET", 200, 30.0, service="billing", source=RequestSource.AGENT
                )
            await tracking.flusher.flush()

            await desk.sweeps(1)
            alerts = await desk.alerts()

        assert firing(alerts, "endpoint_latency") == {f"shop GET {ORDER}", "shop *"}
        whole = next(a for a in alerts if a["component"] == "shop *")
        assert whole["message"].startswith("p95 of every endpoint of shop is")
        assert whole["figures"]["service"] == "shop"
        burning = firing(alerts, "error_budget_burn")
        assert burning == {"latency:shop:60m/5m", "latency:shop:360m/30m"}


class TestPrometheus:
    async def test_request_metrics_carry_the_service_label(
        self, served: FastAPI, client: httpx.AsyncClient
    ) -> None:
        text = (await client.get("/metrics")).text

        assert (
            'watchkeeper_http_requests_total{method="GET",route="/orders/{order_id}",'
            'service="shop",status_class="5xx"} 3.0'
        ) in text
        assert (
            'watchkeeper_http_request_duration_seconds_count{method="POST",route="/cart",'
            'service="shop"} 200.0'
        ) in text
        assert 'service="billing"' in text


class TestOwnServiceName:
    async def test_watchkeepers_own_requests_are_recorded_as_the_configured_service(
        self, settings: Settings
    ) -> None:
        renamed = create_app(settings.model_copy(update={"self_service_name": "front-desk"}))
        async with renamed.router.lifespan_context(renamed):
            transport = httpx.ASGITransport(app=renamed)
            async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:
                assert (await http.get("/healthz")).status_code == 200
                await renamed.state.request_tracking.flusher.flush()
                response = await http.get(f"{PERFORMANCE}/services", headers=bearer(ADMIN_TOKEN))

        [own] = response.json()["services"]
        assert (own["service"], own["sources"], own["requests_24h"]) == ("front-desk", ["self"], 1)
