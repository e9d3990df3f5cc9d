"""A developer asks how everything is doing: live checks, the host, the trend, IETF probes.

The app watches a real Redis and an HTTP API on a closed port (a dependency that is down),
besides the host and its own store, which it always watches; targets are configured as an
operator writes them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.schemas.health import Sweep
from app.services.health.history import HealthLedger
from app.vocabulary.accounts import Role
from app.vocabulary.health import CheckResult, worst_status
from tests.api.maintenance.conftest import Clock
from tests.conftest import ADMIN_TOKEN, Account, MakeAccount, service_url
from tests.services.health.checks.conftest import tcp_listener

HEALTH = "/api/v1/maintenance/health"
COLLECT = "/api/v1/maintenance/metrics/collect"
HEALTH_JSON = "application/health+json"
STATUSES = {"healthy", "degraded", "unhealthy", "unknown"}


def closed_port() -> int:
    """A loopback port nothing listens on: bound once to learn a free number, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


Targets = list[dict[str, Any]]


@pytest.fixture
def targets() -> Targets:
    """Two targets: a live Redis and an HTTP API that is down."""
    redis_url = service_url("WATCHKEEPER_TEST_REDIS_URL", "Redis")
    payments_url = f"http://127.0.0.1:{closed_port()}/health"
    return [
        {"name": "cache", "kind": "redis", "url": redis_url, "timeout_s": 2},
        {"name": "payments", "kind": "http", "url": payments_url, "timeout_s": 2},
    ]


@pytest.fixture
def settings(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, targets: Targets
) -> Settings:
    """The harness's settings plus the test's targets."""
    monkeypatch.setenv("WATCHKEEPER_CONFIG_FILE", str(tmp_path / "absent.toml"))
    return Settings(
        database_url=store_url,
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        monitor_in_process=False,
        targets=targets,
    )


@pytest.fixture
async def dev(make_account: MakeAccount) -> Account:
    return await make_account("dev", Role.DEVELOPER)


@pytest.fixture
async def rita(make_account: MakeAccount) -> Account:
    return await make_account("rita", Role.USER)


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


class TestHealth:
    async def test_developer_sees_every_component_and_the_worst_status_overall(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(HEALTH, headers=dev.headers)

        assert response.status_code == 200, response.text
        body = response.json()
        components = by_name(body["components"])
        assert list(components) == ["system", "store", "cache", "payments"]
        assert [c["kind"] for c in components.values()] == ["system", "database", "redis", "http"]
        assert components["store"]["status"] == "healthy"
        assert components["cache"]["status"] == "healthy"
        assert components["cache"]["details"]["url"].startswith("redis://")
        assert components["payments"]["status"] == "unhealthy"
        assert components["payments"]["latency_ms"] is None
        assert "connect" in components["payments"]["message"].lower()
        assert all(c["status"] in STATUSES and c["message"] for c in components.values())
        assert body["status"] == "unhealthy"  # the API that is down drags the whole down

    async def test_system_summary_carries_the_hosts_headline_figures(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        system = (await client.get(HEALTH, headers=dev.headers)).json()["system"]

        for percent in ("cpu_percent", "memory_percent", "swap_percent", "disk_percent"):
            assert 0 <= system[percent] <= 100
        assert len(system["load_average"]) == 3
        assert system["process_count"] > 0
        assert system["uptime_s"] > 0

    async def test_trend_of_a_store_without_history_has_no_uptime_to_claim(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        trend = (await client.get(f"{HEALTH}?hours=48", headers=dev.headers)).json()["trend"]

        assert trend["hours"] == 48
        assert trend["uptime_percent"] is None
        assert trend["direction"] == "stable"
        assert "not enough history" in trend["direction_reason"]
        assert trend["components"] == []
        assert trend["overall"]["name"] == "*"
        assert trend["overall"]["no_data_s"] > 47 * 3600
        assert set(trend) == {
            "hours",
            "window_start",
            "window_end",
            "previous_window_start",
            "precision",
            "uptime_percent",
            "previous_uptime_percent",
            "direction",
            "direction_reason",
            "overall",
            "components",
        }

    @pytest.mark.parametrize("hours", [0, 721])
    async def test_a_window_outside_one_hour_to_thirty_days_is_refused(
        self, client: httpx.AsyncClient, dev: Account, hours: int
    ) -> None:
        response = await client.get(f"{HEALTH}?hours={hours}", headers=dev.headers)

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "hours"]

    async def test_a_user_may_not_see_the_health_of_the_service(
        self, client: httpx.AsyncClient, rita: Account
    ) -> None:
        response = await client.get(HEALTH, headers=rita.headers)

        assert response.status_code == 403

    async def test_no_token_is_401_with_a_bearer_challenge(self, client: httpx.AsyncClient) -> None:
        response = await client.get(HEALTH)

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_a_burst_of_callers_shares_one_sweep(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        first, second = await asyncio.gather(
            client.get(HEALTH, headers=dev.headers), client.get(HEALTH, headers=dev.headers)
        )

        assert second.json()["checked_at"] == first.json()["checked_at"]
        assert second.json()["components"] == first.json()["components"]


class TestAnswersFromStoredState:
    """/health never waits for the dependencies: it answers with the latest sweep there is
    and says how old it is. Only a store that has never held a sweep gets one run."""

    @pytest.fixture
    def clock(self, app: FastAPI) -> Clock:
        frozen = Clock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        app.state.monitor.clock = frozen
        return frozen

    async def test_the_latest_stored_sweep_comes_back_with_its_age(
        self, client: httpx.AsyncClient, dev: Account, clock: Clock
    ) -> None:
        collected = (await client.post(COLLECT, headers=dev.headers)).json()
        clock.advance(seconds=90)

        body = (await client.get(HEALTH, headers=dev.headers)).json()

        assert body["checked_at"] == collected["checked_at"]  # no new sweep was run
        assert body["age_seconds"] == 90.0
        assert body["stale"] is False
        assert body["components"] == collected["components"]

    async def test_a_sweep_older_than_two_intervals_is_stale(
        self, client: httpx.AsyncClient, dev: Account, clock: Clock
    ) -> None:
        await client.post(COLLECT, headers=dev.headers)
        clock.advance(minutes=10)

        body = (await client.get(HEALTH, headers=dev.headers)).json()
        probe = (await client.get(HEALTH, headers={**dev.headers, "Accept": HEALTH_JSON})).json()

        assert (body["age_seconds"], body["stale"]) == (600.0, True)
        assert probe["ageSeconds"] == 600.0
        assert probe["checkedAt"] == body["checked_at"].replace("Z", "+00:00")
        assert "600 s old" in probe["output"]

    async def test_another_processs_newer_sweep_is_the_answer(
        self, app: FastAPI, client: httpx.AsyncClient, dev: Account, clock: Clock
    ) -> None:
        await client.post(COLLECT, headers=dev.headers)  # ours: payments is down
        clock.advance(seconds=30)
        theirs = replace_payments((await client.get(HEALTH, headers=dev.headers)).json(), clock.now)
        store = app.state.monitor.store
        async with store.unit_of_work() as session:
            ledger = HealthLedger(session, max_gap=app.state.monitor.max_gap)
            await ledger.record(theirs, source="server", sweep_row=None)
        clock.advance(seconds=5)

        body = (await client.get(HEALTH, headers=dev.headers)).json()

        assert body["age_seconds"] == 5.0
        assert by_name(body["components"])["payments"]["status"] == "healthy"

    async def test_with_nothing_stored_the_first_caller_gets_one_sweep_kept_in_memory(
        self, client: httpx.AsyncClient, dev: Account, clock: Clock
    ) -> None:
        first = (await client.get(HEALTH, headers=dev.headers)).json()
        clock.advance(seconds=20)
        second = (await client.get(HEALTH, headers=dev.headers)).json()

        assert first["age_seconds"] == 0.0
        assert second["checked_at"] == first["checked_at"]
        assert second["age_seconds"] == 20.0
        assert second["trend"]["overall"]["checks"] == 0  # run for the answer, not stored


def replace_payments(body: dict[str, Any], at: datetime) -> Sweep:
    """The sweep in ``body`` as another process would take it at ``at``: payments answering."""
    components = [
        CheckResult.model_validate(
            {**c, "status": "healthy", "latency_ms": 12.0, "checked_at": at}
            if c["name"] == "payments"
            else {**c, "checked_at": at}
        )
        for c in body["components"]
    ]
    return Sweep(
        status=worst_status(c.status for c in components),
        checked_at=at,
        duration_ms=20.0,
        components=components,
        system=body["system"],
    )


class TestHealthJson:
    async def test_probes_asking_for_health_json_get_the_ietf_format(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(HEALTH, headers={**dev.headers, "Accept": HEALTH_JSON})

        assert response.status_code == 200
        assert response.headers["content-type"] == HEALTH_JSON
        body = response.json()
        assert body["status"] == "fail"
        checks = body["checks"]
        assert {
            "system:responseTime",
            "store:responseTime",
            "cache:responseTime",
            "payments:responseTime",
            "system:cpu:utilization",
            "system:memory:utilization",
            "system:disk:utilization",
            "system:uptime",
        } <= set(checks)
        for key, entries in checks.items():
            assert ":" in key
            assert {"observedValue", "observedUnit", "status", "time"} <= set(entries[0])
            assert entries[0]["status"] in {"pass", "warn", "fail"}
        assert checks["cache:responseTime"][0]["status"] == "pass"
        assert checks["cache:responseTime"][0]["observedUnit"] == "ms"
        assert checks["cache:responseTime"][0]["componentType"] == "datastore"
        payments = checks["payments:responseTime"][0]
        assert payments["status"] == "fail"
        assert "connect" in payments["output"].lower()
        assert checks["system:memory:utilization"][0]["observedUnit"] == "percent"

    async def test_health_json_still_checks_the_window(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(
            f"{HEALTH}?hours=0", headers={**dev.headers, "Accept": HEALTH_JSON}
        )

        assert response.status_code == 422


class TestCollect:
    async def test_a_collected_sweep_is_stored_and_shows_in_the_trend(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        collected = await client.post(COLLECT, headers=dev.headers)

        assert collected.status_code == 200, collected.text
        sweep = collected.json()
        assert sweep["stored"] is True
        assert isinstance(sweep["sweep_id"], int)
        assert [c["name"] for c in sweep["components"]] == ["system", "store", "cache", "payments"]

        trend = (await client.get(HEALTH, headers=dev.headers)).json()["trend"]

        components = by_name(trend["components"])
        assert set(components) == {"system", "store", "cache", "payments"}
        assert components["cache"]["checks"] == 1
        assert components["cache"]["failures"] == 0
        assert components["cache"]["uptime_percent"] == 100.0
        assert components["payments"]["failures"] == 1
        assert components["payments"]["uptime_percent"] == 0.0
        (incident,) = components["payments"]["incidents"]
        assert incident["ended_at"] is None
        assert incident["started_at"] == next(
            c["checked_at"] for c in sweep["components"] if c["name"] == "payments"
        )
        assert trend["overall"]["checks"] == 1
        assert trend["uptime_percent"] == 0.0

    async def test_collecting_is_for_developers_and_admins(
        self, client: httpx.AsyncClient, rita: Account, admin_headers: dict[str, str]
    ) -> None:
        as_user = await client.post(COLLECT, headers=rita.headers)
        anonymous = await client.post(COLLECT)
        as_admin = await client.post(COLLECT, headers=admin_headers)

        assert as_user.status_code == 403
        assert anonymous.status_code == 401
        assert as_admin.status_code == 200
        assert as_admin.json()["stored"] is True


class TestTcpTarget:
    """An operator watches two bare ports: a database that accepts and a broker that is down."""

    @pytest.fixture
    async def database_port(self) -> AsyncIterator[int]:
        async with tcp_listener() as port:
            yield port

    @pytest.fixture
    def targets(self, database_port: int) -> Targets:
        return [
            {"name": "pg", "kind": "tcp", "url": f"tcp://127.0.0.1:{database_port}"},
            {"name": "broker", "kind": "tcp", "url": f"tcp://127.0.0.1:{closed_port()}"},
        ]

    async def test_a_collected_sweep_checks_the_ports(
        self, client: httpx.AsyncClient, dev: Account, database_port: int
    ) -> None:
        collected = await client.post(COLLECT, headers=dev.headers)

        assert collected.status_code == 200, collected.text
        components = by_name(collected.json()["components"])
        assert components["pg"]["kind"] == "tcp"
        assert components["pg"]["status"] == "healthy"
        assert components["pg"]["latency_ms"] is not None
        assert components["pg"]["details"]["port"] == database_port
        assert components["broker"]["status"] == "unhealthy"
        assert "connection refused" in components["broker"]["message"]

        trend = (await client.get(HEALTH, headers=dev.headers)).json()["trend"]

        assert by_name(trend["components"])["pg"]["kind"] == "tcp"

    async def test_health_json_lists_the_ports_as_components(
        self, client: httpx.AsyncClient, dev: Account
    ) -> None:
        response = await client.get(HEALTH, headers={**dev.headers, "Accept": HEALTH_JSON})

        assert response.status_code == 200
        checks = response.json()["checks"]
        assert checks["pg:responseTime"][0]["componentType"] == "component"
        assert checks["pg:responseTime"][0]["status"] == "pass"
        assert checks["broker:responseTime"][0]["status"] == "fail"
        assert "connection refused" in checks["broker:responseTime"][0]["output"]
