"""The HTTP check's latency is the dependency's part of the request: connecting, and the
wait from the request sent to the response's headers. Reading the body is ours. The check
times it with the context's clock, which here only the server moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.services.health.checks import CheckContext, run_check
from app.services.health.checks.http import HttpTarget
from app.vocabulary.health import ComponentStatus


class FakeClock:
    """Seconds that pass only when the server says so; it notes the first reading taken
    after the server has sent its headers (the client seeing them)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.headers_sent = False
        self.headers_seen = asyncio.Event()

    def __call__(self) -> float:
        if self.headers_sent:
            self.headers_seen.set()
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def thinking_api(clock: FakeClock) -> AsyncIterator[str]:
    """An API that thinks 250 ms before its headers, then streams its body for 5 s."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        clock.now += 0.25
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        await writer.drain()
        clock.headers_sent = True
        await clock.headers_seen.wait()
        clock.now += 5.0
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/health"
    server.close()
    await server.wait_closed()


async def test_the_latency_is_the_wait_for_the_answer_not_the_body(
    thinking_api: str, clock: FakeClock
) -> None:
    target = HttpTarget(kind="http", name="api", url=thinking_api, timeout_s=5)
    async with CheckContext(clock=clock) as context:
        result = await asyncio.wait_for(run_check(target, context), timeout=10)

    assert result.status is ComponentStatus.HEALTHY
    assert result.latency_ms == 250.0
    assert result.message == "GET 200 in 250 ms"
