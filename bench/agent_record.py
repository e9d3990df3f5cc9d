"""What the agent costs per request: ``RequestRecorder.record`` alone, and the ASGI middleware.

1. ``record()``: µs per call over 30 routes (the agent's recorder, as its integrations
   call it through ``Agent.record``, which guards it).
2. The middleware: a 30-route Starlette app with and without ``WatchkeeperMiddleware``
   (an agent that records and ships nothing), driven two ways: the ASGI app called
   directly (no client in the way: the cleanest difference) and through
   ``httpx.ASGITransport`` (what a test client sees). Variants interleave, each figure is
   the median of the repeats, and the recorder is emptied between repeats.

Run from the repository root::

    .venv/bin/python bench/agent_record.py [--requests 20000] [--repeats 7]

Prints the figures and writes ``bench/results/agent_record.json``. The comparison with
OpenTelemetry's instrumentation is ``bench/agent_overhead.py``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from asgi_load import drive_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from watchkeeper_agent import Agent, WatchkeeperMiddleware

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "agent_record.json"
ROUTES = 30


def time_record(calls: int, repeats: int) -> float:
    """Median µs per ``Agent.record`` call, cycling over ``ROUTES`` routes."""
    agent = Agent.configure(environ={})
    routes = [f"/resource{number}/items/{{item_id}}" for number in range(ROUTES)]
    samples = []
    for _ in range(repeats):
        agent.recorder.drain(final=True)
        gc.collect()
        started = time.perf_counter()
        for number in range(calls):
            agent.record(routes[number % ROUTES], "GET", 200, 12.5 + number % 50, None)
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def build_app(agent: Agent | None) -> Starlette:
    """``ROUTES`` templated GET routes, with the agent's middleware when ``agent`` is given."""

    async def read_item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [Route(f"/resource{n}/items/{{item_id}}", read_item) for n in range(ROUTES)]
    app = Starlette(routes=routes)
    if agent is not None:
        app.add_middleware(WatchkeeperMiddleware, agent=agent)
    return app


def paths() -> list[str]:
    return [f"/resource{number}/items/{number * 7}" for number in range(ROUTES)]


async def drive_httpx(app: Starlette, requests: int) -> float:
    """µs per request through httpx's ASGI transport."""
    targets = paths()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        started = time.perf_counter()
        for number in range(requests):
            response = await client.get(targets[number % ROUTES])
            response.raise_for_status()
        return (time.perf_counter() - started) / requests * 1e6


async def drive_direct(app: Starlette, requests: int) -> float:
    """µs per request, calling the ASGI app directly."""
    return await drive_asgi(app, paths(), requests)


async def time_middleware(requests: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median µs per request with and without the middleware, both ways of driving."""
    agent = Agent.configure(environ={})
    apps = {"none": build_app(None), "agent": build_app(agent)}
    results: dict[str, dict[str, float]] = {}
    for way, drive, count in (
        ("asgi", drive_direct, requests),
        ("httpx", drive_httpx, max(requests // 5, 1)),
    ):
        samples: dict[str, list[float]] = {variant: [] for variant in apps}
        for app in apps.values():
            await drive(app, 500)  # builds the middleware stack, warms caches
        for _ in range(repeats):
            for variant, app in apps.items():
                agent.recorder.drain(final=True)
                gc.collect()
                samples[variant].append(await drive(app, count))
        medians = {variant: statistics.median(values) for variant, values in samples.items()}
        medians["added"] = medians["agent"] - medians["none"]
        results[way] = medians
    return results


def main() -> None:
    """Measure, print and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "routes": ROUTES,
        "record_us": time_record(args.requests * 5, args.repeats),
        "middleware_us": asyncio.run(time_middleware(args.requests, args.repeats)),
    }
    print(f"Agent.record(): {results['record_us']:.2f} µs per call ({ROUTES} routes)")
    for way, row in results["middleware_us"].items():
        print(
            f"{ROUTES}-route Starlette app, {way:<5}: none {row['none']:7.1f} µs,"
            f" agent {row['agent']:7.1f} µs, added {row['added']:5.1f} µs per request"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
