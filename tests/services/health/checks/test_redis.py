"""The Redis check against the real Redis on this machine, and on crafted INFO for limits."""

from __future__ import annotations

from app.services.health.checks import run_check
from app.services.health.checks.redis import RedisTarget, figures_from_info, judge_redis
from app.vocabulary.health import ComponentStatus
from tests.services.health.checks.conftest import LocalHttpServer


def redis_target(url: str, **options: object) -> RedisTarget:
    return RedisTarget.model_validate({"name": "cache", "kind": "redis", "url": url, **options})


FULLISH_INFO = {
    "redis_version": "7.2.4",
    "role": "master",
    "connected_clients": 40,
    "maxclients": 10000,
    "used_memory": 900 * 1024 * 1024,
    "maxmemory": 1024 * 1024 * 1024,
    "evicted_keys": 12,
    "rejected_connections": 0,
    "keyspace_hits": 750,
    "keyspace_misses": 250,
}


class TestOnTheRealServer:
    async def test_reports_real_info_figures(self, redis_url: str) -> None:
        result = await run_check(redis_target(redis_url))
        details = result.details
        assert result.status is ComponentStatus.HEALTHY
        assert result.latency_ms is not None and 0 < result.latency_ms < 1000
        assert details["redis_version"][0].isdigit()
        assert details["role"] in ("master", "slave")
        assert details["connected_clients"] >= 1  # at least this check
        assert details["used_memory"] > 0
        assert details["maxmemory"] >= 0
        assert details["evicted_keys"] >= 0 and details["rejected_connections"] >= 0
        assert details["hit_ratio"] is None or 0 <= details["hit_ratio"] <= 1
        assert result.message.startswith("PING in ")

    async def test_a_server_that_is_not_redis_is_unhealthy(
        self, http_server: LocalHttpServer
    ) -> None:
        # An HTTP server waits for a request line Redis never sends: the check must not wait.
        url = f"redis://127.0.0.1:{http_server.port}/0"
        result = await run_check(redis_target(url, timeout_s=0.5))
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message == "no answer within 0.5 s"


class TestLimits:
    def test_near_maxmemory_is_degraded(self) -> None:
        finding = judge_redis(redis_target("redis://x"), 0.4, figures_from_info(FULLISH_INFO))
        assert finding.status is ComponentStatus.DEGRADED
        assert finding.message == "PING in 0.4 ms; memory 87.9% >= 80%"
        assert finding.details["hit_ratio"] == 0.75

    def test_at_maxmemory_is_unhealthy(self) -> None:
        info = {**FULLISH_INFO, "used_memory": FULLISH_INFO["maxmemory"]}
        finding = judge_redis(redis_target("redis://x"), 0.4, figures_from_info(info))
        assert finding.status is ComponentStatus.UNHEALTHY

    def test_no_maxmemory_means_memory_is_not_rated(self) -> None:
        info = {**FULLISH_INFO, "maxmemory": 0}
        finding = judge_redis(redis_target("redis://x"), 0.4, figures_from_info(info))
        assert finding.status is ComponentStatus.HEALTHY
        assert "no maxmemory limit" in finding.message
        assert "memory_percent" not in finding.details

    def test_clients_near_maxclients_degrade(self) -> None:
        info = {**FULLISH_INFO, "maxmemory": 0, "connected_clients": 9_000}
        finding = judge_redis(redis_target("redis://x"), 0.4, figures_from_info(info))
        assert finding.status is ComponentStatus.DEGRADED
        assert "clients 90.0% >= 80%" in finding.message
