"""The ASGI middleware in a real FastAPI app and a plain Starlette app, over httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TOKEN, Receiver
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from watchkeeper_agent import UNMATCHED_ROUTE, Agent, WatchkeeperMiddleware

Key = tuple[str, str, str]


class SteppingClock:
    """A perf counter the endpoints move forward by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def build_app(agent: Agent, clock: SteppingClock, static_dir: Path) -> FastAPI:
    app = FastAPI()
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        clock.now += 0.025
        return {"item_id": item_id}

    app.include_router(items)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("broken on purpose")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                clock.now += 0.5
                yield b"chunk"

        def after_response() -> None:
            clock.now += 60.0  # work done after the response must not count

        return StreamingResponse(chunks(), background=BackgroundTask(after_response))

    sub = FastAPI()

    @sub.get("/deep/{name}")
    async def deep(name: str) -> dict[str, str]:
        return {"name": name}

    app.mount("/sub", sub)
    app.mount("/static", StaticFiles(directory=static_dir))
    app.add_middleware(WatchkeeperMiddleware, agent=agent, clock=clock)
    return app


@pytest.fixture
def agent() -> Agent:
    return Agent.configure(environ={}, service="shop")


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
async def client(
    agent: Agent, clock: SteppingClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "app.css").write_text("body {}")
    app = build_app(agent, clock, tmp_path)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def counts(agent: Agent) -> dict[Key, int]:
    return {(b.route, b.method, b.status_class): b.count for b in agent.recorder.drain(final=True)}


class TestRouteNames:
    async def test_the_template_names_the_route_not_the_raw_path(
        self, client: httpx.AsyncClient, agent: Agent
    ) -> None:
        for item_id in (1, 42, 9000):
            assert (await client.get(f"/items/{item_id}")).status_code == 200
        await client.get("/items/not-a-number")
        await client.delete("/items/1")
        assert counts(agent) == {
            ("/items/{item_id}", "GET", "2xx"): 3,
            ("/items/{item_id}", "GET", "4xx"): 1,
            ("/items/{item_id}", "DELETE", "4xx"): 1,
        }

    async def test_unmatched_paths_share_one_bucket(
        self, client: httpx.AsyncClient, agent: Agent
    ) -> None:
        for path in ("/nope", "/wp-login.php", "/a/b/c/d", "/.env"):
            assert (await client.get(path)).status_code == 404
        assert counts(agent) == {(UNMATCHED_ROUTE, "GET", "4xx"): 4}

    async def test_mounted_apps_and_static_files_use_the_mount_path(
        self, client: httpx.AsyncClient, agent: Agent
    ) -> None:
        for path in ("/static/app.css", "/static/missing.js", "/sub/deep/x", "/sub/deep/y"):
            await client.get(path)
        assert counts(agent) == {
            ("/static", "GET", "2xx"): 1,
            ("/static", "GET", "4xx"): 1,
            ("/sub", "GET", "2xx"): 2,
        }

    async def test_a_plain_starlette_app_is_named_by_its_routes(self) -> None:
        async def hello(request: Request) -> PlainTextResponse:
            return PlainTextResponse(request.path_params["name"])

        agent = Agent.configure(environ={})
        app = Starlette(routes=[Route("/hello/{name}", hello)])
        app.add_middleware(WatchkeeperMiddleware, agent=agent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/hello/ann")
            await client.get("/hello/bob", headers={"X-Request-ID": "req-bob"})
        [bucket] = agent.recorder.drain(final=True)
        assert (bucket.route, bucket.count) == ("/hello/{name}", 2)
        assert "req-bob" in {exemplar.request_id for exemplar in bucket.exemplars}


class TestDurationsAndStatuses:
    async def test_the_duration_is_the_apps_time_to_the_last_chunk(
        self, client: httpx.AsyncClient, agent: Agent
    ) -> None:
        await client.get("/items/1")
        await client.get("/stream")
        buckets = {b.route: b for b in agent.recorder.drain(final=True)}
        assert buckets["/items/{item_id}"].sum_ms == pytest.approx(25.0)
        assert buckets["/stream"].sum_ms == pytest.approx(1500.0)

    async def test_an_exception_is_counted_as_a_server_error_and_propagates(
        self, agent: Agent, clock: SteppingClock, tmp_path: Path
    ) -> None:
        transport = httpx.ASGITransport(app=build_app(agent, clock, tmp_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with pytest.raises(RuntimeError, match="broken on purpose"):
                await client.get("/boom")
        assert counts(agent) == {("/boom", "GET", "5xx"): 1}


class TestConfiguredFromOptions:
    async def test_the_lifespans_end_delivers_what_is_left(self, receiver: Receiver) -> None:
        async def ok(request: Request) -> PlainTextResponse:
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/ok", ok)])
        app.add_middleware(
            WatchkeeperMiddleware, url=receiver.url, token=TOKEN, service="shop", interval_s=3600
        )
        with_lifespan = _Lifespan(app)
        await with_lifespan.startup()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(3):
                await client.get("/ok")
        assert receiver.requests() == 0  # the thread waits an hour between shipments
        await with_lifespan.shutdown()
        assert receiver.requests() == 3
        assert [b["route"] for b in receiver.buckets()] == ["/ok"]


class _Lifespan:
    """Drives an ASGI app's lifespan the way a server does."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.sent: asyncio.Queue[str] = asyncio.Queue()

    async def startup(self) -> None:
        async def receive() -> MutableMapping[str, Any]:
            return await self.queue.get()

        async def send(message: MutableMapping[str, Any]) -> None:
            await self.sent.put(message["type"])

        self.task = asyncio.create_task(self.app({"type": "lifespan"}, receive, send))
        await self.queue.put({"type": "lifespan.startup"})
        assert await self.sent.get() == "lifespan.startup.complete"

    async def shutdown(self) -> None:
        await self.queue.put({"type": "lifespan.shutdown"})
        assert await self.sent.get() == "lifespan.shutdown.complete"
        await self.task
