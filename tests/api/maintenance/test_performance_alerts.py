"""Performance alerts: slow or failing endpoints over a sliding window, and error budgets
burning too fast — raised by the sweep after the requests were served, cleared when the
window is healthy again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from app.schemas.alerts import AlertRules
from app.schemas.objectives import Objectives
from app.schemas.targets import Target
from app.services.health.checks.http import HttpTarget
from app.vocabulary.health import ComponentKind
from tests.api.maintenance.receivers import Desk, quiet_system

ISSUES = "/api/v1/maintenance/issues"
ROUTE = f"watchkeeper GET {ISSUES}"
SERVICE = "watchkeeper *"  # every endpoint of Watchkeeper's own service


RULES = AlertRules(cpu_percent=100, memory_percent=100, disk_percent=100, min_requests=50)


@asynccontextmanager
async def running(settings: Settings, *targets: Target) -> AsyncIterator[Desk]:
    app = create_app(
        settings.model_copy(update={"targets": [quiet_system(), *targets], "alert_rules": RULES})
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:
            yield Desk(app, http)


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[Desk]:
    async with running(settings) as operator:
        yield operator


async def served(app: FastAPI, *, count: int, duration_ms: float, status: int) -> None:
    """Requests to the issue list, as the middleware records them, then stored."""
    tracking = app.state.request_tracking
    for _ in range(count):
        tracking.recorder.record(ISSUES, "GET", status, duration_ms)
    await tracking.flusher.flush()


def firing(alerts: list[dict[str, Any]], rule: str) -> set[str]:
    return {a["component"] for a in alerts if a["rule"] == rule and a["state"] == "firing"}


class TestEndpointAlerts:
    async def test_slow_and_failing_endpoint_alerts_and_recovers(self, desk: Desk) -> None:
        await served(desk.app, count=40, duration_ms=40, status=200)
        await served(desk.app, count=10, duration_ms=3500, status=200)
        await served(desk.app, count=10, duration_ms=3000, status=500)

        await desk.sweeps(1)
        alerts = await desk.alerts()

        assert firing(alerts, "endpoint_latency") == {ROUTE, SERVICE}
        assert firing(alerts, "error_rate") == {ROUTE, SERVICE}
        latency = next(
            a for a in alerts if a["rule"] == "endpoint_latency" and a["component"] == ROUTE
        )
        assert latency["figures"]["requests"] == 60
        assert latency["figures"]["value"] > 2000
        assert "p95 of watchkeeper GET /api/v1/maintenance/issues" in latency["message"]
        assert latency["figures"]["service"] == "watchkeeper"

        await served(desk.app, count=2000, duration_ms=30, status=200)
        await desk.sweeps(1)
        alerts = await desk.alerts()

        assert firing(alerts, "endpoint_latency") == set()
        assert firing(alerts, "error_rate") == set()

    async def test_too_few_requests_page_nobody(self, desk: Desk) -> None:
        await served(desk.app, count=20, duration_ms=5000, status=500)

        await desk.sweeps(1)

        assert firing(await desk.alerts(), "endpoint_latency") == set()
        assert firing(await desk.alerts(), "error_rate") == set()


class TestErrorBudgetBurn:
    async def test_latency_budget_burning_fast_in_both_windows_alerts(self, desk: Desk) -> None:
        await served(desk.app, count=20, duration_ms=50, status=200)
        await served(desk.app, count=80, duration_ms=2500, status=200)  # 80% over 2 s

        await desk.sweeps(1)

        burning = firing(await desk.alerts(rule="error_budget_burn"), "error_budget_burn")
        assert burning == {"latency:watchkeeper:60m/5m", "latency:watchkeeper:360m/30m"}
        [fast] = await desk.alerts(rule="error_budget_burn", component="latency:watchkeeper:60m/5m")
        assert fast["message"].startswith("latency of watchkeeper error budget burning")
        assert fast["severity"] == "critical"
        assert fast["figures"]["burn_rate_60m"] == pytest.approx(16.0, rel=0.05)

    async def test_latency_budget_is_measured_against_the_latency_objective(
        self, settings: Settings
    ) -> None:
        relaxed = settings.model_copy(update={"objectives": Objectives(latency_ms=3000)})
        async with running(relaxed) as desk:
            await served(desk.app, count=20, duration_ms=50, status=200)
            await served(desk.app, count=80, duration_ms=2500, status=200)  # within 3 s

            await desk.sweeps(1)

            assert await desk.alerts(rule="error_budget_burn") == []

    async def test_availability_budget_burns_on_sustained_unhealthy_sweeps(
        self, settings: Settings
    ) -> None:
        down = HttpTarget(
            kind=ComponentKind.HTTP, name="api", url="http://127.0.0.1:9/", timeout_s=1
        )
        async with running(settings, down) as desk:
            await desk.sweeps(2)
            early = await desk.alerts(rule="error_budget_burn")
            await desk.sweeps(1)
            later = await desk.alerts(rule="error_budget_burn")

        assert early == []
        assert firing(later, "error_budget_burn") == {
            "availability:60m/5m",
            "availability:360m/30m",
        }
