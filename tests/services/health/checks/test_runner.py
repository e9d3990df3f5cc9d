"""A sweep: every target at once, each under its own timeout, and nothing ever raises."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from app.schemas.targets import Target
from app.services.health.checks import CheckContext, run_checks
from app.services.health.checks.registry import parse_targets
from app.vocabulary.health import ComponentStatus
from tests.services.health.checks.conftest import LocalHttpServer


def http_targets(server: LocalHttpServer, paths: list[str], timeout_s: float) -> list[Target]:
    return parse_targets(
        [
            {
                "name": f"api-{index}",
                "kind": "http",
                "url": server.url(path),
                "timeout_s": timeout_s,
            }
            for index, path in enumerate(paths)
        ]
    )


class TestSweep:
    async def test_hung_targets_cost_the_sweep_one_timeout_not_the_sum(
        self, http_server: LocalHttpServer
    ) -> None:
        # A Redis pointed at an HTTP port hangs too: it waits for a reply that never comes.
        hung_redis = {"name": "cache", "kind": "redis", "timeout_s": 1.0}
        hung_redis["url"] = f"redis://127.0.0.1:{http_server.port}/0"
        paths = ["/hang"] * 2 + ["/slow?ms=100"] * 5 + ["/ok", "/fail"]
        targets = [
            *parse_targets([hung_redis, {"kind": "system"}]),
            *http_targets(http_server, paths, timeout_s=1.0),
        ]
        started = time.perf_counter()
        results = await run_checks(targets)
        wall_s = time.perf_counter() - started
        assert 1.0 <= wall_s < 1.5  # the three timeouts in a row would be 3 s
        assert [result.name for result in results] == [target.name for target in targets]
        by_name = {result.name: result for result in results}
        hung = ["cache", "api-0", "api-1"]
        assert all(by_name[name].message == "no answer within 1 s" for name in hung)
        answered = [result for result in results if result.name not in hung]
        # The host's own rating depends on how busy this machine is; the APIs' do not.
        assert [result.status for result in answered[1:]] == [ComponentStatus.HEALTHY] * 6 + [
            ComponentStatus.UNHEALTHY
        ]
        # The answering targets were not held back by the hung ones.
        assert all(result.latency_ms is not None and result.latency_ms < 500 for result in answered)

    async def test_waiting_for_a_free_slot_does_not_count_against_the_timeout(
        self, http_server: LocalHttpServer
    ) -> None:
        # One slot, three targets of 300 ms each with a 500 ms timeout: run one after another,
        # every one still answers within its own budget.
        targets = http_targets(http_server, ["/slow?ms=300"] * 3, timeout_s=0.5)
        async with CheckContext(max_concurrency=1) as context:
            results = await run_checks(targets, context)
        assert [result.status for result in results] == [ComponentStatus.HEALTHY] * 3

    async def test_checked_at_is_utc(self, http_server: LocalHttpServer) -> None:
        (result,) = await run_checks(http_targets(http_server, ["/ok"], timeout_s=1))
        assert result.checked_at.utcoffset() == timedelta(0)


class TestStoppedDependencies:
    @pytest.mark.parametrize(
        ("kind", "url"),
        [
            ("database", "postgresql+asyncpg://postgres:s3cret@127.0.0.1:{port}/test"),
            ("mongodb", "mongodb://127.0.0.1:{port}/?directConnection=true"),
            ("redis", "redis://:s3cret@127.0.0.1:{port}/0"),
            ("http", "http://127.0.0.1:{port}/health"),
        ],
    )
    async def test_a_closed_port_is_unhealthy_with_a_clear_message(
        self, closed_port: int, kind: str, url: str
    ) -> None:
        target = {"name": kind, "kind": kind, "url": url.format(port=closed_port), "timeout_s": 1}
        (result,) = await run_checks(parse_targets([target]))
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.latency_ms is None
        assert any(
            clue in result.message for clue in ("Connect call failed", "connection attempts failed")
        ), result.message
        assert "s3cret" not in result.model_dump_json()
