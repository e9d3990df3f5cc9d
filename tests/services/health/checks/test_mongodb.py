"""The MongoDB check through pymongo's async client against MockupDB servers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mockupdb import MockupDB

from app.services.health.checks import run_check
from app.services.health.checks.mongodb import MongoTarget
from app.vocabulary.health import ComponentStatus
from tests.services.health.checks.conftest import server_status

StartMongo = Callable[..., MockupDB]


def mongo(server: MockupDB, **options: object) -> MongoTarget:
    url = f"mongodb://127.0.0.1:{server.port}/?directConnection=true"
    return MongoTarget.model_validate({"name": "docs", "kind": "mongodb", "url": url, **options})


class TestMongoCheck:
    async def test_a_primary_with_spare_connections_is_healthy(
        self, mongo_server: StartMongo
    ) -> None:
        result = await run_check(mongo(mongo_server(hello={"setName": "rs0"})))
        details = result.details
        assert result.status is ComponentStatus.HEALTHY
        assert result.latency_ms is not None and result.latency_ms < 1000
        assert details["role"] == "primary" and details["set_name"] == "rs0"
        assert details["connections_current"] == 12
        assert details["connections_available"] == 838
        assert details["connections_percent"] == pytest.approx(1.41)
        assert details["opcounters"]["query"] == 250
        assert details["version"] == "7.0.12"
        assert result.message.startswith("ping in ")

    async def test_near_the_connection_limit_is_degraded(self, mongo_server: StartMongo) -> None:
        server = mongo_server(status=server_status(current=850, available=150))
        result = await run_check(mongo(server))
        assert result.status is ComponentStatus.DEGRADED
        assert "connections 85.0% >= 80%" in result.message

    async def test_out_of_connections_is_unhealthy(self, mongo_server: StartMongo) -> None:
        server = mongo_server(status=server_status(current=998, available=2))
        result = await run_check(mongo(server))
        assert result.status is ComponentStatus.UNHEALTHY

    async def test_a_secondary_says_so(self, mongo_server: StartMongo) -> None:
        hello = {"isWritablePrimary": False, "secondary": True, "setName": "rs0"}
        result = await run_check(mongo(mongo_server(hello=hello)))
        assert result.status is ComponentStatus.HEALTHY
        assert "role secondary" in result.message

    async def test_a_recovering_member_is_degraded(self, mongo_server: StartMongo) -> None:
        hello = {"isWritablePrimary": False, "secondary": False, "setName": "rs0"}
        result = await run_check(mongo(mongo_server(hello=hello)))
        assert result.status is ComponentStatus.DEGRADED
        assert "neither primary nor secondary" in result.message

    async def test_without_rights_to_server_status_the_ping_still_counts(
        self, mongo_server: StartMongo
    ) -> None:
        refusal = {"ok": 0, "errmsg": "not authorized on admin", "code": 13}
        result = await run_check(mongo(mongo_server(status=refusal)))
        assert result.status is ComponentStatus.HEALTHY
        assert "clusterMonitor" in result.details["server_status"]

    async def test_garbage_figures_are_unknown_and_logged(
        self, mongo_server: StartMongo, caplog: pytest.LogCaptureFixture
    ) -> None:
        # The server answered, so it is not down; the check could not read it: unknown.
        garbage = {"connections": {"current": "lots", "available": "some"}}
        result = await run_check(mongo(mongo_server(status=garbage)))
        assert result.status is ComponentStatus.UNKNOWN
        assert result.message.startswith("check failed: ValueError")
        assert "check docs (mongodb) failed unexpectedly" in caplog.text

    async def test_a_closed_port_is_unhealthy_within_the_timeout(self, closed_port: int) -> None:
        url = f"mongodb://127.0.0.1:{closed_port}/?directConnection=true"
        target = MongoTarget(kind="mongodb", name="docs", url=url, timeout_s=1.0)
        result = await run_check(target)
        assert result.status is ComponentStatus.UNHEALTHY
        assert "Connect call failed" in result.message or "refused" in result.message
