"""The server's request metrics (the agent's middleware over its own recorder), driven
through a small FastAPI app over httpx."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.staticfiles import StaticFiles
from watchkeeper_agent import WatchkeeperMiddleware
from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

from app.core.logging import AccessLogMiddleware
from app.vocabulary.performance import UNMATCHED_ROUTE


class SteppingClock:
    """A perf counter the endpoints move forward by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def build_app(recorder: RequestRecorder, clock: SteppingClock, static_dir: Path) -> FastAPI:
    app = FastAPI()
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        clock.now += 0.025
        return {"item_id": item_id}

    @items.post("")
    async def create_item() -> dict[str, str]:
        return {}

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
    app.add_middleware(WatchkeeperMiddleware, recorder=recorder, clock=clock)
    app.add_middleware(AccessLogMiddleware)
    return app


@pytest.fixture
def recorder() -> RequestRecorder:
    return RequestRecorder()


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
async def metrics_client(
    recorder: RequestRecorder, clock: SteppingClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "app.css").write_text("body {}")
    transport = httpx.ASGITransport(
        app=build_app(recorder, clock, tmp_path), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def by_route(recorder: RequestRecorder) -> dict[tuple[str, str, str], MinuteBucket]:
    return {(b.route, b.method, b.status_class): b for b in recorder.drain(final=True)}


class TestRouteNames:
    async def test_the_template_names_the_route_not_the_raw_path(self, metrics_client, recorder):
        for item_id in (1, 42, 9000):
            assert (await metrics_client.get(f"/items/{item_id}")).status_code == 200
        buckets = by_route(recorder)
        assert list(buckets) == [("/items/{item_id}", "GET", "2xx")]
        assert buckets["/items/{item_id}", "GET", "2xx"].count == 3

    async def test_unmatched_paths_share_one_bucket(self, metrics_client, recorder):
        for path in ("/nope", "/wp-login.php", "/a/b/c/d", "/.env"):
            assert (await metrics_client.get(path)).status_code == 404
        buckets = by_route(recorder)
        assert list(buckets) == [(UNMATCHED_ROUTE, "GET", "4xx")]
        assert buckets[UNMATCHED_ROUTE, "GET", "4xx"].count == 4

    async def test_mounted_apps_and_static_files_use_the_mount_path(self, metrics_client, recorder):
        for path in ("/static/app.css", "/static/missing.js", "/sub/deep/x", "/sub/deep/y"):
            await metrics_client.get(path)
        assert {key: b.count for key, b in by_route(recorder).items()} == {
            ("/static", "GET", "2xx"): 1,
            ("/static", "GET", "4xx"): 1,
            ("/sub", "GET", "2xx"): 2,
        }


class TestStatusClasses:
    async def test_each_response_is_counted_under_its_status_class(self, metrics_client, recorder):
        await metrics_client.get("/items/1")
        await metrics_client.get("/items/not-a-number")  # 422
        await metrics_client.delete("/items/1")  # 405
        await metrics_client.post("/items")
        assert {key: b.count for key, b in by_route(recorder).items()} == {
            ("/items/{item_id}", "GET", "2xx"): 1,
            ("/items/{item_id}", "GET", "4xx"): 1,
            ("/items/{item_id}", "DELETE", "4xx"): 1,
            ("/items", "POST", "2xx"): 1,
        }

    async def test_an_exception_is_recorded_as_a_server_error_and_propagates(
        self, recorder, clock, tmp_path
    ):
        transport = httpx.ASGITransport(app=build_app(recorder, clock, tmp_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with pytest.raises(RuntimeError, match="broken on purpose"):
                await client.get("/boom")
        assert list(by_route(recorder)) == [("/boom", "GET", "5xx")]


class TestTiming:
    async def test_the_duration_is_the_clock_time_spent_serving(self, metrics_client, recorder):
        await metrics_client.get("/items/7")
        [bucket] = recorder.drain(final=True)
        assert bucket.sum_ms == pytest.approx(25.0)

    async def test_the_duration_ends_with_the_last_body_chunk(self, metrics_client, recorder):
        response = await metrics_client.get("/stream")
        assert response.content == b"chunk" * 3
        [bucket] = recorder.drain(final=True)
        assert bucket.sum_ms == pytest.approx(1500.0)

    async def test_the_request_id_of_the_access_log_marks_the_exemplar(
        self, metrics_client, recorder
    ):
        await metrics_client.get("/items/7", headers={"X-Request-ID": "trace-me-42"})
        [bucket] = recorder.drain(final=True)
        assert [e.request_id for e in bucket.exemplars] == ["trace-me-42"]


async def test_non_http_scopes_pass_through_untouched(recorder):
    seen: list[str] = []

    async def inner(scope, receive, send) -> None:
        seen.append(scope["type"])

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message) -> None:
        raise AssertionError("nothing is sent")

    middleware = WatchkeeperMiddleware(inner, recorder=recorder)
    await middleware({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"] and recorder.pending_buckets == 0
