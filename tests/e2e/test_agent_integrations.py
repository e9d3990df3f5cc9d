"""A FastAPI, a Flask and a Django app with watchkeeper-agent, shipping to a real Watchkeeper.

Each app serves requests whose durations the test chose (the views move the clock the
integration reads), the agent ships its batches over HTTP to Watchkeeper served by uvicorn,
and ``analysis?service=…`` must count every request exactly, with p50/p95/p99 within the
sketch's bound. Then Watchkeeper goes away mid-run and comes back on the same store and
port: the agent's retried batches must leave every request counted once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import django
import httpx
import numpy as np
import pytest
import watchkeeper_agent.django
import watchkeeper_agent.flask
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from fastapi import FastAPI
from flask import Flask, request
from watchkeeper_agent import Agent, WatchkeeperMiddleware

from app.core.config import Settings
from app.vocabulary.sketch import RELATIVE_ACCURACY
from tests.e2e.test_otel_exporters import analysis_of, developer_and_ingest_token
from tests.e2e.watchkeeper_server import RunningWatchkeeper, serve_watchkeeper

REQUESTS = 300
ROUTE_OF = {
    "fastapi": "/items/{item_id}",
    "flask": "/items/<int:item_id>",
    "django": "/items/<int:item_id>/",
}
# The answers round durations to a microsecond.
ROUNDING_MS = 0.001
DELIVERY_SECONDS = 30.0


class SteppingClock:
    """The perf counter an integration reads; a view moves it by the request's duration."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def serve(self, duration_ms: float) -> None:
        self.now += duration_ms / 1000.0


def known_durations(seed: int) -> list[float]:
    """Long-tailed durations in milliseconds, the ones the views will take."""
    return [float(d) for d in np.random.default_rng(seed).lognormal(np.log(25.0), 0.9, REQUESTS)]


def shipping_agent(watchkeeper: RunningWatchkeeper, token: str, service: str) -> Agent:
    """An agent configured as the README says, shipping often, retrying quickly."""
    return Agent.configure(
        url=watchkeeper.url,
        token=token,
        service=service,
        interval_s=0.05,
        timeout_s=5.0,
        max_backoff_s=0.2,
    )


# One app per framework: each serves ``/items/<id>?ms=<duration>`` taking ``ms``.
Drive = Callable[[list[float]], None]


def fastapi_app(agent: Agent, clock: SteppingClock) -> Callable[[list[float]], Any]:
    app = FastAPI()
    for n in range(2):  # another route, so naming by the matched template is tested too

        @app.get(f"/other-{n}")
        async def other() -> dict[str, str]:
            return {}

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, ms: float) -> dict[str, int]:
        clock.serve(ms)
        return {"item_id": item_id}

    app.add_middleware(WatchkeeperMiddleware, agent=agent, clock=clock)

    async def drive(durations: list[float]) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            for index, duration in enumerate(durations):
                answer = await http.get(f"/items/{index}", params={"ms": duration})
                assert answer.status_code == 200

    return drive


def flask_app(agent: Agent, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch) -> Drive:
    app = Flask("shop")

    @app.get("/items/<int:item_id>")
    def read_item(item_id: int) -> dict[str, int]:
        clock.serve(float(request.args["ms"]))
        return {"item_id": item_id}

    monkeypatch.setattr(watchkeeper_agent.flask, "time", SimpleNamespace(perf_counter=clock))
    watchkeeper_agent.flask.init_app(app, agent)
    client = app.test_client()

    def drive(durations: list[float]) -> None:
        for index, duration in enumerate(durations):
            assert client.get(f"/items/{index}", query_string={"ms": duration}).status_code == 200

    return drive


def django_read_item(request: HttpRequest, item_id: int) -> HttpResponse:
    CLOCKS[-1].serve(float(request.GET["ms"]))
    return HttpResponse("{}", content_type="application/json")


urlpatterns = [path("items/<int:item_id>/", django_read_item)]
# The clock of the Django test running now: Django's views are found by import path.
CLOCKS: list[SteppingClock] = []


def django_app(agent: Agent, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch) -> Drive:
    # Settings are the process's: configured here only when no other test module did, at
    # test time, so a module configuring them as it is collected keeps its own.
    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["testserver"], INSTALLED_APPS=[], LOGGING_CONFIG=None
        )
        django.setup()
    CLOCKS.append(clock)
    monkeypatch.setattr(watchkeeper_agent.django, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(watchkeeper_agent.django, "_agent", agent)

    def drive(durations: list[float]) -> None:
        with override_settings(
            ROOT_URLCONF=__name__, MIDDLEWARE=["watchkeeper_agent.django.WatchkeeperMiddleware"]
        ):
            client = Client()
            for index, duration in enumerate(durations):
                assert client.get(f"/items/{index}/", {"ms": duration}).status_code == 200

    return drive


@pytest.fixture
def clock() -> Iterator[SteppingClock]:
    clock = SteppingClock()
    yield clock
    if clock in CLOCKS:
        CLOCKS.remove(clock)


async def served(
    framework: str, agent: Agent, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> Callable[[list[float]], Any]:
    """A function driving the framework's app through the given durations."""
    if framework == "fastapi":
        return fastapi_app(agent, clock)
    sync = (flask_app if framework == "flask" else django_app)(agent, clock, monkeypatch)

    async def drive(durations: list[float]) -> None:
        # The sync test clients block: off the event loop, as a WSGI server's thread would.
        await asyncio.to_thread(sync, durations)

    return drive


async def delivered(agent: Agent) -> None:
    """Waits until the agent has shipped everything it recorded, within a deadline."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not await asyncio.to_thread(agent.flush):
        assert time.monotonic() < deadline, "the agent never delivered its batches"
        await asyncio.sleep(0.05)


def assert_counted(endpoint: dict[str, Any], durations: list[float]) -> None:
    assert endpoint["requests"] == len(durations)
    for quantile, field in ((0.5, "median_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        exact = float(np.quantile(durations, quantile, method="lower"))
        assert abs(endpoint[field] - exact) <= exact * RELATIVE_ACCURACY + ROUNDING_MS, field


def endpoints(analysis: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["method"], e["route"]): e for e in analysis["endpoints"]}


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
class TestShippingToWatchkeeper:
    async def test_every_request_counted_and_quantiles_within_the_sketch_bound(
        self,
        framework: str,
        settings: Settings,
        clock: SteppingClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        durations = known_durations(seed=len(framework))
        service = f"{framework}-shop"
        async with serve_watchkeeper(settings) as watchkeeper:
            developer, ingest = await developer_and_ingest_token(watchkeeper)
            agent = shipping_agent(watchkeeper, ingest, service)
            drive = await served(framework, agent, clock, monkeypatch)

            await drive(durations)
            await asyncio.to_thread(agent.close)
            analysis = await analysis_of(watchkeeper, developer, service)

        assert analysis["overall"]["requests"] == REQUESTS
        assert list(endpoints(analysis)) == [("GET", ROUTE_OF[framework])]
        assert_counted(endpoints(analysis)["GET", ROUTE_OF[framework]], durations)


class TestWatchkeeperAway:
    async def test_nothing_is_lost_or_counted_twice_while_it_restarts(
        self, settings: Settings, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        durations = known_durations(seed=11)
        before, during, after = durations[:100], durations[100:200], durations[200:]
        async with serve_watchkeeper(settings) as first:
            developer, ingest = await developer_and_ingest_token(first)
            agent = shipping_agent(first, ingest, "shop")
            drive = await served("fastapi", agent, clock, monkeypatch)
            port = int(first.url.rsplit(":", 1)[1])
            await drive(before)
            await delivered(agent)

        await drive(during)  # Watchkeeper is away: the agent keeps them and retries
        assert agent.shipper is not None
        away_deadline = time.monotonic() + DELIVERY_SECONDS
        while not agent.shipper.pending_batches:  # a batch was made and could not go
            assert time.monotonic() < away_deadline, "the agent never tried to ship"
            await asyncio.sleep(0.02)
        waiting = agent.shipper.undelivered_requests

        async with serve_watchkeeper(settings, port=port) as second:
            await drive(after)
            await delivered(agent)
            await asyncio.to_thread(agent.close)
            analysis = await analysis_of(second, developer, "shop")

        assert waiting > 0
        assert analysis["overall"]["requests"] == len(durations)
        assert_counted(endpoints(analysis)["GET", "/items/{item_id}"], durations)
