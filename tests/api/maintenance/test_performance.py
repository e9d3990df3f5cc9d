"""Performance stories through the HTTP API: real requests recorded, flushed and analysed;
empty windows; bad input; the Prometheus exposition; flushing on shutdown."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.config import Settings
from app.db.models import ComponentState, RequestMinute
from app.db.store import Store
from app.main import create_app
from app.services.performance.flusher import RequestTracking
from app.vocabulary.accounts import Role
from app.vocabulary.health import ComponentKind, ComponentStatus
from app.vocabulary.sketch import RELATIVE_ACCURACY
from tests.conftest import MakeAccount

PERFORMANCE = "/api/v1/maintenance/performance"
ISSUE_ROUTE = "/api/v1/maintenance/issues/{issue_id}"


def spy_on_durations(app: FastAPI) -> dict[tuple[str, str], list[float]]:
    """Every duration the middleware hands the recorder, per (method, route)."""
    tracking: RequestTracking = app.state.request_tracking
    recorder = tracking.recorder
    original = recorder.record
    seen: dict[tuple[str, str], list[float]] = defaultdict(list)

    def record(route: str, method: str, status_code: int, duration_ms: float, *args, **kwargs):
        seen[method, route].append(duration_ms)
        original(route, method, status_code, duration_ms, *args, **kwargs)

    recorder.record = record  # type: ignore[method-assign]
    return seen


async def flush_all(app: FastAPI) -> None:
    await app.state.request_tracking.flusher.flush()


def assert_close(measured: float, exact: float) -> None:
    # The sketch's bound, plus the API's rounding to a microsecond.
    assert abs(measured - exact) <= exact * RELATIVE_ACCURACY + 0.001, (measured, exact)


class TestAnalysisOfRealRequests:
    async def test_counts_and_quantiles_match_the_durations_served(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        seen = spy_on_durations(app)
        for _ in range(60):
            assert (await client.get("/healthz")).status_code == 200
        for issue_id in range(1, 26):
            missing = await client.get(
                f"/api/v1/maintenance/issues/{issue_id}", headers=admin_headers
            )
            assert missing.status_code == 404
        assert (await client.get("/no/such/page")).status_code == 404
        await flush_all(app)
        exact = {key: list(values) for key, values in seen.items()}

        response = await client.get(f"{PERFORMANCE}/analysis?hours=1", headers=admin_headers)

        assert response.status_code == 200, response.text
        body = response.json()
        endpoints = {(e["method"], e["route"]): e for e in body["endpoints"]}
        assert endpoints["GET", "/healthz"]["requests"] == 60
        assert endpoints["GET", ISSUE_ROUTE]["requests"] == 25
        assert endpoints["GET", ISSUE_ROUTE]["client_error_rate"] == 1.0
        assert endpoints["GET", "<unmatched>"]["requests"] == 1
        assert body["overall"]["requests"] == sum(len(v) for v in exact.values())
        for key, durations in exact.items():
            figures = endpoints[key]
            for name, q in (("median_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
                assert_close(
                    figures[name], float(np.percentile(durations, q * 100, method="lower"))
                )
            assert figures["max_ms"] == pytest.approx(max(durations), abs=0.001)
            assert figures["avg_ms"] == pytest.approx(np.mean(durations), abs=0.001)
        every = [d for values in exact.values() for d in values]
        assert_close(body["overall"]["p95_ms"], float(np.percentile(every, 95, method="lower")))
        assert body["slo"]["met"] is True
        assert body["slo"]["share_within_target"] == 1.0
        assert body["note"] is None

    async def test_the_previous_window_gives_the_change(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        for _ in range(5):
            await client.get("/healthz")
        await flush_all(app)

        body = (await client.get(f"{PERFORMANCE}/analysis?hours=2", headers=admin_headers)).json()

        healthz = next(e for e in body["endpoints"] if e["route"] == "/healthz")
        # Nothing was served before this window: no change can be computed.
        assert healthz["change"]["requests"] is None
        assert body["previous_window"]["end"] == body["window"]["start"]


class TestEmptyWindows:
    async def test_no_data_answers_nulls_and_says_why(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        analysis = await client.get(f"{PERFORMANCE}/analysis?hours=2160", headers=admin_headers)
        bottlenecks = await client.get(f"{PERFORMANCE}/bottlenecks?days=90", headers=admin_headers)
        advice = await client.get(f"{PERFORMANCE}/recommendations", headers=admin_headers)
        trends = await client.get(f"{PERFORMANCE}/trends?period=quarter", headers=admin_headers)
        slo = await client.get("/api/v1/maintenance/slo", headers=admin_headers)

        assert [r.status_code for r in (analysis, bottlenecks, advice, trends, slo)] == [200] * 5
        overall = analysis.json()["overall"]
        assert overall["requests"] == 0 and overall["p95_ms"] is None
        assert overall["requests_per_minute"] == 0.0
        assert "No requests" in analysis.json()["note"]
        assert analysis.json()["slo"]["met"] is None
        assert bottlenecks.json()["bottlenecks"] == [] and bottlenecks.json()["note"]
        assert advice.json()["recommendations"] == [] and advice.json()["note"]
        assert trends.json()["improvement"] is None and trends.json()["target_met"] is None
        assert len(trends.json()["overall"]) == 4
        criteria = {c["name"]: c for c in slo.json()["criteria"]}
        assert set(criteria) == {
            "uptime",
            "response_time",
            "issue_resolution",
            "quarterly_improvement",
        }
        assert all(c["measured"] is None and c["met"] is None for c in criteria.values())
        assert slo.json()["met"] is None


class TestBadInput:
    @pytest.mark.parametrize(
        "query",
        [
            "analysis?hours=0",
            "analysis?hours=2161",
            "analysis?hours=day",
            "bottlenecks?days=0",
            "bottlenecks?days=91",
            "recommendations?days=91",
            "trends?period=month",
        ],
    )
    async def test_out_of_range_is_422(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str], query: str
    ) -> None:
        response = await client.get(f"{PERFORMANCE}/{query}", headers=admin_headers)
        assert response.status_code == 422, response.text

    async def test_users_may_not_read_performance(
        self, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        rita = await make_account("rita", Role.USER)
        assert (
            await client.get(f"{PERFORMANCE}/analysis", headers=rita.headers)
        ).status_code == 403
        assert (await client.get("/api/v1/maintenance/slo")).status_code == 401


class TestPrometheusExposition:
    async def test_metrics_show_requests_latency_and_component_status(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        for _ in range(7):
            await client.get("/healthz")
        await flush_all(app)
        async with app.state.store.unit_of_work() as session:
            now = datetime.now(UTC)
            session.add(
                ComponentState(
                    component="cache",
                    kind=ComponentKind.REDIS,
                    status=ComponentStatus.UNHEALTHY,
                    since=now,
                    last_checked_at=now,
                    last_latency_ms=12.5,
                )
            )

        response = await client.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert (
            "watchkeeper_http_requests_total"
            '{method="GET",route="/healthz",service="watchkeeper",status_class="2xx"} 7.0' in text
        )
        assert (
            "watchkeeper_http_request_duration_seconds_count"
            '{method="GET",route="/healthz",service="watchkeeper"} 7.0' in text
        )
        assert 'le="2.0"' in text
        assert 'watchkeeper_component_up{component="cache",kind="redis"} 0.0' in text
        assert (
            'watchkeeper_component_status{component="cache",kind="redis",status="unhealthy"} 1.0'
            in text
        )
        assert (
            'watchkeeper_component_latency_seconds{component="cache",kind="redis"} 0.0125' in text
        )


class TestExpositionClosedToStaff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"metrics_public": False})

    async def test_staff_scrape_and_everyone_else_is_refused(
        self, client: httpx.AsyncClient, make_account: MakeAccount, admin_headers: dict[str, str]
    ) -> None:
        developer = await make_account("dana", Role.DEVELOPER)
        user = await make_account("uma", Role.USER)

        anonymous = await client.get("/metrics")
        as_user = await client.get("/metrics", headers=user.headers)
        as_developer = await client.get("/metrics", headers=developer.headers)
        as_admin = await client.get("/metrics", headers=admin_headers)

        assert anonymous.status_code == 401
        assert as_user.status_code == 403
        for scraped in (as_developer, as_admin):
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            assert "# TYPE watchkeeper_http_requests_total counter" in scraped.text


class TestShutdown:
    async def test_shutdown_stores_every_request_served(self, settings: Settings) -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://wk") as client:
                for _ in range(12):
                    await client.get("/healthz")

        store = Store(settings.database_url)
        async with store.unit_of_work() as session:
            stored = await session.scalar(
                select(func.sum(RequestMinute.count)).where(RequestMinute.route == "/healthz")
            )
        await store.dispose()
        assert stored == 12
