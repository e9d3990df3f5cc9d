"""What watchkeeper-agent adds to a request, against OpenTelemetry's instrumentation.

Two apps of 30 templated routes: a FastAPI app, called as an ASGI app directly, and a
Flask app, called as a WSGI app directly (no HTTP client in the way of either). Three variants
of each: no instrumentation; the agent (``WatchkeeperMiddleware`` / ``flask.init_app``)
shipping to a local sink; OpenTelemetry (``opentelemetry-instrumentation-fastapi``, and
for Flask the WSGI middleware of ``opentelemetry-instrumentation-wsgi``) with the SDK's
``BatchSpanProcessor`` and the OTLP/HTTP span exporter posting to the same sink. The sink
is a stdlib HTTP server on loopback answering 200 to every POST, so both ship for real.

The figure is the µs of CPU each instrumentation adds: the median, over interleaved
repeats, of its CPU µs per request minus the uninstrumented variant's in the same round,
with the spread of those differences (interquartile range). CPU time of the whole process,
every thread included (the agent's shipper, OpenTelemetry's batch processor), so other
work on a shared machine does not count against either, and no background cost is missed.
Run from the repository root::

    .venv/bin/python bench/agent_overhead.py

Prints a table and writes ``bench/results/agent_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from asgi_load import drive_asgi
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from flask import Flask
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from watchkeeper_agent import Agent, WatchkeeperMiddleware
from watchkeeper_agent.flask import init_app as init_flask_agent
from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "agent_overhead.json"
ROUTES = 30
TARGET_US = 10.0
VARIANTS = ("none", "agent", "opentelemetry")


class _Sink(BaseHTTPRequestHandler):
    """Takes every batch or export and answers 200, as a healthy collector would."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def sink() -> Iterator[str]:
    """The local sink's URL while it serves."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Instrumentation:
    """One variant's agent or tracer provider, built against the sink, closed after."""

    def __init__(self, variant: str, sink_url: str) -> None:
        self.variant = variant
        self.agent: Agent | None = None
        self.provider: TracerProvider | None = None
        if variant == "agent":
            self.agent = Agent.configure(
                url=sink_url, token="wk_bench", service="bench", interval_s=1.0
            )
        elif variant == "opentelemetry":
            self.provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
            exporter = OTLPSpanExporter(endpoint=f"{sink_url}/v1/traces")
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        elif variant != "none":
            raise ValueError(f"unknown variant {variant!r}")

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()
        if self.provider is not None:
            self.provider.shutdown()


def paths() -> list[str]:
    """One concrete path per route, so requests spread over the whole routing table."""
    return [f"/resource{number}/items/{number * 7}" for number in range(ROUTES)]


def fastapi_app(instrumentation: Instrumentation) -> FastAPI:
    app = FastAPI()
    for number in range(ROUTES):

        async def read_item(item_id: int) -> str:
            return "ok"

        app.add_api_route(
            f"/resource{number}/items/{{item_id}}",
            read_item,
            methods=["GET"],
            response_class=PlainTextResponse,
        )
    if instrumentation.agent is not None:
        app.add_middleware(WatchkeeperMiddleware, agent=instrumentation.agent)
    if instrumentation.provider is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=instrumentation.provider)
    return app


def flask_app(instrumentation: Instrumentation) -> Flask:
    app = Flask(f"bench-{instrumentation.variant}")
    for number in range(ROUTES):

        def read_item(item_id: int) -> str:
            return "ok"

        app.add_url_rule(f"/resource{number}/items/<int:item_id>", f"read_item_{number}", read_item)
    if instrumentation.agent is not None:
        init_flask_agent(app, instrumentation.agent)
    if instrumentation.provider is not None:
        app.wsgi_app = OpenTelemetryMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, tracer_provider=instrumentation.provider
        )
    return app


def drive_wsgi(app: Flask, requests: int) -> None:
    """Call ``app`` ``requests`` times over the paths in turn, as a WSGI server would."""
    environs = [EnvironBuilder(path=path).get_environ() for path in paths()]
    failures = 0

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
        nonlocal failures
        failures += not status.startswith("200")
        return None

    for number in range(requests):
        # Flask writes into the environ, so each request gets a fresh copy.
        environ = dict(environs[number % len(environs)])
        environ["wsgi.input"] = io.BytesIO()
        body = app(environ, start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()
    if failures:
        raise RuntimeError(f"{failures} requests did not answer 200")


def asgi_driver(loop: asyncio.AbstractEventLoop, app: FastAPI) -> Callable[[int], object]:
    return lambda requests: loop.run_until_complete(drive_asgi(app, paths(), requests))


def wsgi_driver(app: Flask) -> Callable[[int], object]:
    return lambda requests: drive_wsgi(app, requests)


def cpu_us_per_request(drive: Callable[[int], object], requests: int) -> float:
    started = time.process_time()
    drive(requests)
    return (time.process_time() - started) / requests * 1e6


def measure(
    drives: dict[str, Callable[[int], object]], requests: int, repeats: int
) -> dict[str, Any]:
    """µs per request of each variant, and what each adds to the uninstrumented one.

    Repeats are interleaved and each variant is compared with the uninstrumented run of
    its own round (the median of those differences), so drift in machine speed, which
    other work on a shared machine causes, falls on both sides of each difference.
    """
    for drive in drives.values():
        drive(min(requests, 1000))  # builds middleware stacks, warms caches
    samples: dict[str, list[float]] = {variant: [] for variant in drives}
    for _ in range(repeats):
        for variant, drive in drives.items():
            gc.collect()
            samples[variant].append(cpu_us_per_request(drive, requests))
    none = samples["none"]
    differences = {
        variant: [v - n for v, n in zip(samples[variant], none, strict=True)]
        for variant in ("agent", "opentelemetry")
    }
    extra = {variant: statistics.median(d) for variant, d in differences.items()}
    otel = extra["opentelemetry"]
    return {
        "us_per_request": {variant: statistics.median(s) for variant, s in samples.items()},
        "us_added": extra,
        "us_added_iqr": {variant: _iqr(d) for variant, d in differences.items()},
        "agent_share_of_opentelemetry": extra["agent"] / otel if otel > 0 else None,
    }


def _iqr(values: list[float]) -> float:
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per repeat")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"routes": ROUTES, "requests": args.requests, "repeats": args.repeats}
    with sink() as sink_url:
        instrumentations = {variant: Instrumentation(variant, sink_url) for variant in VARIANTS}
        try:
            loop = asyncio.new_event_loop()
            asgi = {v: asgi_driver(loop, fastapi_app(i)) for v, i in instrumentations.items()}
            results["fastapi"] = measure(asgi, args.requests, args.repeats)
            loop.close()
            wsgi = {v: wsgi_driver(flask_app(i)) for v, i in instrumentations.items()}
            results["flask"] = measure(wsgi, args.requests, args.repeats)
        finally:
            for instrumentation in instrumentations.values():
                instrumentation.close()
    for framework in ("fastapi", "flask"):
        figures = results[framework]
        base = figures["us_per_request"]["none"]
        share = figures["agent_share_of_opentelemetry"]
        print(f"{framework} ({ROUTES} routes): {base:.1f} CPU µs a request uninstrumented")
        for variant, extra in figures["us_added"].items():
            spread = figures["us_added_iqr"][variant]
            print(f"  {variant:<14} +{extra:6.1f} µs (interquartile range {spread:.1f} µs)")
        agent_added = figures["us_added"]["agent"]
        verdict = "met" if agent_added <= TARGET_US else "NOT met"
        print(f"  agent target <= {TARGET_US:.0f} µs: {verdict}")
        print(f"  agent / opentelemetry: {share:.3f}" if share is not None else "  (no OTel cost)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
