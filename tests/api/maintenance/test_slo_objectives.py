"""The success criteria judge by the configured objectives, never by numbers of their own.

An operator who sets ``[objectives]`` sees exactly those targets in ``/slo`` (and in the
analysis and trends), and ``met`` follows them: the same measured history meets one
objective and misses a stricter one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from watchkeeper_agent.recorder import MinuteBucket

from app.core.config import Settings
from app.db.models import HealthHour
from app.db.models.health import OVERALL
from app.schemas.objectives import Objectives
from app.services.performance import storage
from app.vocabulary.health import ComponentKind
from app.vocabulary.performance import RequestSource, StatusClass
from app.vocabulary.sketch import QuantileSketch
from tests.api.maintenance.conftest import Clock, file_issue, walk_to
from tests.conftest import Account

SLO = "/api/v1/maintenance/slo"
PERFORMANCE = "/api/v1/maintenance/performance"
NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
STRICTER = Objectives(
    availability_percent=99.5,
    latency_ms=500,
    latency_share=0.9,
    resolution_hours=24,
    quarterly_improvement_percent=5,
)


@pytest.fixture
def objectives() -> Objectives:
    """The objectives the operator configured; tests parametrize it to compare."""
    return STRICTER


@pytest.fixture
def settings(settings: Settings, objectives: Objectives) -> Settings:
    return settings.model_copy(update={"objectives": objectives})


async def criteria(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = await client.get(SLO, headers=headers)
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()["criteria"]}


class TestTargetsAreTheObjectives:
    async def test_slo_reports_the_configured_targets(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        found = await criteria(client, admin_headers)

        assert {name: c["target"] for name, c in found.items()} == {
            "uptime": 99.5,
            "response_time": 500,
            "issue_resolution": 24,
            "quarterly_improvement": 5,
        }
        assert found["uptime"]["description"] == "System uptime > 99.5%"
        assert found["response_time"]["description"] == (
            "Response time < 500 ms for 90% of requests"
        )
        assert found["response_time"]["unit"] == "ms (p90)"
        assert found["issue_resolution"]["description"] == "Issue resolution time < 24 hours"
        assert found["quarterly_improvement"]["description"] == (
            "Performance improvements > 5% quarterly"
        )

    async def test_analysis_and_trends_judge_by_the_same_objectives(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        analysis = await client.get(f"{PERFORMANCE}/analysis", headers=admin_headers)
        trends = await client.get(f"{PERFORMANCE}/trends?period=quarter", headers=admin_headers)

        assert analysis.json()["slo"]["target_ms"] == 500
        assert analysis.json()["slo"]["target_share"] == 0.9
        assert trends.json()["improvement_target"] == 0.05


async def monitored_hours(app: FastAPI, *, unhealthy_s: float) -> None:
    """Ten monitored hours before ``NOW``, the service down ``unhealthy_s`` of them."""
    app.state.clock = lambda: NOW
    async with app.state.store.unit_of_work() as session:
        session.add_all(
            HealthHour(
                component=OVERALL,
                kind=ComponentKind.SYSTEM,
                hour=NOW.replace(minute=0) - timedelta(hours=back),
                healthy_s=3600.0 - (unhealthy_s if back == 3 else 0.0),
                unhealthy_s=unhealthy_s if back == 3 else 0.0,
                checks=60,
            )
            for back in range(1, 11)
        )


class TestUptime:
    @pytest.mark.parametrize(
        ("objectives", "met"),
        [(STRICTER, True), (Objectives(), False)],
        ids=["met-at-99.5", "missed-at-99.9"],
    )
    async def test_the_same_uptime_meets_one_objective_and_misses_a_stricter_one(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], met: bool
    ) -> None:
        await monitored_hours(app, unhealthy_s=108.0)  # 0.3% of ten hours

        uptime = (await criteria(client, admin_headers))["uptime"]

        assert uptime["measured"] == pytest.approx(99.7)
        assert uptime["met"] is met

    async def test_it_is_the_overall_uptime_of_the_health_trend_whatever_a_component_did(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        await monitored_hours(app, unhealthy_s=108.0)
        async with app.state.store.unit_of_work() as session:
            session.add_all(
                HealthHour(
                    component="reports-db",
                    kind=ComponentKind.DATABASE,
                    hour=NOW.replace(minute=0) - timedelta(hours=back),
                    unhealthy_s=3600.0,
                    checks=60,
                    failures=60,
                )
                for back in range(1, 11)
            )

        uptime = (await criteria(client, admin_headers))["uptime"]
        health = await client.get("/api/v1/maintenance/health?hours=720", headers=admin_headers)

        trend = health.json()["trend"]
        assert uptime["measured"] == trend["uptime_percent"] == pytest.approx(99.7)
        assert {c["name"]: c["uptime_percent"] for c in trend["components"]}["reports-db"] == 0


async def served(app: FastAPI, durations_ms: list[float]) -> None:
    """Requests of one route, written as the flusher would, an hour before ``NOW``."""
    app.state.clock = lambda: NOW
    minute = NOW - timedelta(hours=1)
    bucket = MinuteBucket(
        minute,
        "watchkeeper",
        RequestSource.SELF,
        "/api/catalog",
        "GET",
        StatusClass.SUCCESS,
        QuantileSketch.of(durations_ms),
        (),
    )
    async with app.state.store.unit_of_work() as session:
        await storage.write_minutes(session, [bucket], process="test")


class TestResponseTime:
    @pytest.mark.parametrize(
        ("objectives", "quantile", "measured", "met"),
        [
            (Objectives(latency_ms=500, latency_share=0.9), "p90", 300, True),
            (Objectives(latency_ms=500, latency_share=0.95), "p95", 800, False),
        ],
        ids=["p90-met", "p95-missed"],
    )
    async def test_the_criterion_is_the_configured_share_within_the_configured_time(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
        quantile: str,
        measured: float,
        met: bool,
    ) -> None:
        await served(app, [300.0] * 92 + [800.0] * 8)  # 92% within 500 ms

        response_time = (await criteria(client, admin_headers))["response_time"]

        assert response_time["unit"] == f"ms ({quantile})"
        assert response_time["measured"] == pytest.approx(measured, rel=0.01)
        assert response_time["met"] is met
        assert response_time["detail"].startswith("92.00% of 100 requests took at most 500 ms")


class TestIssueResolution:
    @pytest.mark.parametrize(
        ("objectives", "met"),
        [(STRICTER, False), (Objectives(), True)],
        ids=["missed-at-24h", "met-at-48h"],
    )
    async def test_a_median_of_thirty_hours_misses_a_day_and_meets_two(
        self,
        client: httpx.AsyncClient,
        admin_headers: dict[str, str],
        clock: Clock,
        rita: Account,
        dev: Account,
        met: bool,
    ) -> None:
        issue = await file_issue(client, rita)
        clock.advance(hours=30)
        await walk_to(client, dev, issue["id"], "resolved")

        resolution = (await criteria(client, admin_headers))["issue_resolution"]

        assert resolution["measured"] == pytest.approx(30)
        assert resolution["met"] is met
