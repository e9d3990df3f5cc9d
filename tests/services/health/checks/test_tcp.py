"""The TCP check: an operator watches a port Watchkeeper has no client for."""

from __future__ import annotations

import pytest

from app.core.config import ConfigurationError
from app.services.health.checks import run_check
from app.services.health.checks.registry import parse_targets
from app.services.health.checks.tcp import TcpTarget
from app.vocabulary.health import ComponentStatus


def port_target(url: str, **options: object) -> TcpTarget:
    (target,) = parse_targets([{"name": "pg", "kind": "tcp", "url": url, **options}])
    assert isinstance(target, TcpTarget)
    return target


class TestTcpCheck:
    async def test_a_port_that_accepts_is_healthy_with_the_connect_latency(
        self, open_port: int
    ) -> None:
        result = await run_check(port_target(f"tcp://127.0.0.1:{open_port}"))

        assert result.status is ComponentStatus.HEALTHY
        assert result.kind == "tcp"
        assert result.latency_ms is not None and result.latency_ms >= 0
        assert result.message.startswith(f"connected to 127.0.0.1:{open_port} in ")
        assert result.details == {
            "url": f"tcp://127.0.0.1:{open_port}",
            "host": "127.0.0.1",
            "port": open_port,
        }

    async def test_a_closed_port_is_unhealthy_and_says_it_was_refused(
        self, closed_port: int
    ) -> None:
        result = await run_check(port_target(f"tcp://127.0.0.1:{closed_port}", timeout_s=2))

        assert result.status is ComponentStatus.UNHEALTHY
        assert result.latency_ms is None
        assert result.message == f"cannot connect to 127.0.0.1:{closed_port}: connection refused"
        assert result.details["error"] == "ConnectionRefusedError"


class TestTcpTarget:
    @pytest.mark.parametrize(
        ("url", "complaint"),
        [
            ("tcp://db.internal", "expected tcp://host:port"),
            ("tcp://:5432", "expected tcp://host:port"),
            ("tcp://db.internal:0", "expected tcp://host:port"),
            ("tcp://db.internal:99999", "Port out of range"),
            ("http://db.internal:5432", "URL scheme must be one of tcp"),
        ],
    )
    def test_a_url_without_host_and_port_stops_start_up(self, url: str, complaint: str) -> None:
        with pytest.raises(ConfigurationError, match=f"target 'pg': url: .*{complaint}"):
            port_target(url)

    def test_the_latency_limit_is_taken(self) -> None:
        target = port_target("tcp://db.internal:5432", degraded_latency_ms=50)

        assert (target.host, target.port, target.degraded_latency_ms) == ("db.internal", 5432, 50)
