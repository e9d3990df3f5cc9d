"""A sweep: every target at once, each under its own timeout, and nothing ever raises."""

from __future__ import annotations

import asyncio
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


class Silent:
    """A loopback port that takes connections and never answers: a hung dependency. It
    counts the connections held at once, which is how many hung checks were in flight."""

    def __init__(self) -> None:
        self.held = 0
        self.most_held = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Silent:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()  # a client that kept its connection open
        await self._server.wait_closed()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        self._writers.add(writer)
        try:
            await reader.read()  # until the check gives up and hangs up
        finally:
            self.held -= 1
            writer.close()


class TestSweep:
    async def test_hung_targets_cost_the_sweep_one_timeout_not_the_sum(
        self, http_server: LocalHttpServer
    ) -> None:
        async with Silent() as silent:
            # A Redis that never replies hangs like an API that never answers.
            hung = [
                {"name": "cache", "kind": "redis", "url": f"redis://127.0.0.1:{silent.port}/0"},
                *(
                    {"name": f"hung-{n}", "kind": "http", "url": f"http://127.0.0.1:{silent.port}/"}
                    for n in range(2)
                ),
            ]
            targets = [
                *parse_targets([{**target, "timeout_s": 1.0} for target in hung]),
                *parse_targets([{"kind": "system"}]),
                *http_targets(http_server, ["/slow?ms=100"] * 5 + ["/ok", "/fail"], timeout_s=1.0),
            ]
            results = await run_checks(targets)

        # One after another, each hung check would have been alone on the silent port.
        assert silent.most_held == 3
        assert [result.name for result in results] == [target.name for target in targets]
        by_name = {result.name: result for result in results}
        assert all(by_name[t["name"]].message == "no answer within 1 s" for t in hung)
        answered = results[4:]  # the host's own rating depends on how busy this machine is
        assert [result.status for result in answered] == [ComponentStatus.HEALTHY] * 6 + [
            ComponentStatus.UNHEALTHY
        ]

    async def test_waiting_for_a_free_slot_does_not_count_against_the_timeout(
        self, http_server: LocalHttpServer
    ) -> None:
        # One slot, three targets of 400 ms each with a 1 s timeout: run one after another,
        # every one still answers within its own budget (the last would not, counted from
        # the sweep's start).
        targets = http_targets(http_server, ["/slow?ms=400"] * 3, timeout_s=1.0)
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
