"""The HTTP check against local servers that answer, fail, hang, talk garbage or use TLS."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.services.health.checks import run_check
from app.services.health.checks.http import HttpTarget
from app.vocabulary.health import ComponentStatus
from tests.services.health.checks.conftest import LocalHttpServer

StartTls = Callable[..., Awaitable[LocalHttpServer]]


def api(url: str, **options: Any) -> HttpTarget:
    return HttpTarget.model_validate({"name": "api", "kind": "http", "url": url, **options})


class TestAnswers:
    async def test_a_200_is_healthy_with_its_latency(self, http_server: LocalHttpServer) -> None:
        result = await run_check(api(http_server.url("/ok")))
        assert result.status is ComponentStatus.HEALTHY
        assert result.latency_ms is not None and 0 < result.latency_ms < 1000
        assert result.message.startswith("GET 200 in ")
        assert result.details["status_code"] == 200

    async def test_a_500_is_unhealthy_and_says_what_was_expected(
        self, http_server: LocalHttpServer
    ) -> None:
        result = await run_check(api(http_server.url("/fail")))
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message.endswith("expected 2xx, 3xx")
        assert "GET 500" in result.message

    async def test_an_expected_error_status_is_healthy(self, http_server: LocalHttpServer) -> None:
        result = await run_check(api(http_server.url("/fail"), expected_status=[500]))
        assert result.status is ComponentStatus.HEALTHY

    async def test_a_slow_answer_past_the_latency_limit_is_degraded(
        self, http_server: LocalHttpServer
    ) -> None:
        target = api(http_server.url("/slow?ms=150"), degraded_latency_ms=50)
        result = await run_check(target)
        assert result.status is ComponentStatus.DEGRADED
        assert result.message.startswith("slow: ") and "> 50 ms" in result.message


class TestBodyConditions:
    @pytest.mark.parametrize(
        "body",
        [
            {"json_path": "$.status", "equals": "ok"},
            {"json_path": "checks[0].status", "equals": "pass"},
            {"json_path": "version", "equals": 3},
            {"json_path": "checks", "contains": "pass"},
            {"json_path": "status"},
        ],
    )
    async def test_a_holding_condition_is_healthy(
        self, http_server: LocalHttpServer, body: dict[str, Any]
    ) -> None:
        result = await run_check(api(http_server.url("/ok"), body=body))
        assert result.status is ComponentStatus.HEALTHY, result.message

    @pytest.mark.parametrize(
        ("path", "body", "complaint"),
        [
            ("/ok", {"json_path": "status", "equals": "down"}, 'status is "ok", expected "down"'),
            ("/ok", {"json_path": "version", "equals": True}, "version is 3, expected true"),
            ("/ok", {"json_path": "checks[5].status"}, "checks[5].status not found in body"),
            ("/text", {"json_path": "status", "equals": "ok"}, "body is not JSON"),
            ("/text", {"text_contains": "on fire"}, "body does not contain 'on fire'"),
        ],
    )
    async def test_a_failing_condition_is_unhealthy_and_explained(
        self, http_server: LocalHttpServer, path: str, body: dict[str, Any], complaint: str
    ) -> None:
        result = await run_check(api(http_server.url(path), body=body))
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message.endswith(complaint)

    async def test_text_contains_reads_plain_bodies(self, http_server: LocalHttpServer) -> None:
        target = api(http_server.url("/text"), body={"text_contains": "nominal"})
        assert (await run_check(target)).status is ComponentStatus.HEALTHY


class TestFaults:
    async def test_a_hanging_server_is_unhealthy_after_its_timeout(
        self, http_server: LocalHttpServer
    ) -> None:
        started = time.perf_counter()
        result = await run_check(api(http_server.url("/hang"), timeout_s=0.5))
        assert 0.5 <= time.perf_counter() - started < 1.0
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message == "no answer within 0.5 s"
        assert result.latency_ms is None

    async def test_garbage_instead_of_http_is_unhealthy(self, http_server: LocalHttpServer) -> None:
        result = await run_check(api(http_server.url("/garbage")))
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message.startswith("RemoteProtocolError")

    async def test_a_closed_port_is_unhealthy_at_once(self, closed_port: int) -> None:
        started = time.perf_counter()
        result = await run_check(api(f"http://127.0.0.1:{closed_port}/health"))
        assert time.perf_counter() - started < 1
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message.startswith("ConnectError")

    async def test_secrets_in_the_url_never_reach_the_result(self, closed_port: int) -> None:
        url = f"http://probe:pa55word@127.0.0.1:{closed_port}/health?token=t0ken&region=eu"
        result = await run_check(api(url))
        dumped = result.model_dump_json()
        assert "pa55word" not in dumped and "t0ken" not in dumped
        assert result.details["url"].endswith("/health?token=***&region=eu")


class TestTls:
    async def test_a_certificate_from_an_untrusted_ca_is_unhealthy_and_explained(
        self, tls_server: StartTls
    ) -> None:
        server = await tls_server()
        result = await run_check(api(server.url("/ok")))
        assert result.status is ComponentStatus.UNHEALTHY
        assert result.message.startswith("TLS certificate rejected: ")
        assert "verify_tls = false" in result.message
        assert result.details["tls"]["verified"] is False

    async def test_verify_tls_false_accepts_it(self, tls_server: StartTls) -> None:
        server = await tls_server()
        result = await run_check(api(server.url("/ok"), verify_tls=False))
        assert result.status is ComponentStatus.HEALTHY
        assert result.details["tls"] == {"verified": False}

    async def test_a_trusted_certificate_reports_its_days_left(
        self, tls_server: StartTls, ca_file: str
    ) -> None:
        server = await tls_server(not_after=datetime.now(UTC) + timedelta(days=90))
        result = await run_check(api(server.url("/ok"), ca_file=ca_file))
        assert result.status is ComponentStatus.HEALTHY
        assert 89 <= result.details["tls"]["days_left"] <= 90
        assert result.details["tls"]["version"].startswith("TLSv1.")

    async def test_a_certificate_about_to_expire_is_degraded(
        self, tls_server: StartTls, ca_file: str
    ) -> None:
        server = await tls_server(not_after=datetime.now(UTC) + timedelta(days=5, hours=1))
        result = await run_check(api(server.url("/ok"), ca_file=ca_file, cert_warn_days=14))
        assert result.status is ComponentStatus.DEGRADED
        assert result.message.endswith("TLS certificate expires in 5 days")

    async def test_an_expired_certificate_is_unhealthy(
        self, tls_server: StartTls, ca_file: str
    ) -> None:
        past = datetime.now(UTC) - timedelta(days=30)
        server = await tls_server(not_before=past, not_after=past + timedelta(days=10))
        result = await run_check(api(server.url("/ok"), ca_file=ca_file))
        assert result.status is ComponentStatus.UNHEALTHY
        assert "certificate has expired" in result.message
