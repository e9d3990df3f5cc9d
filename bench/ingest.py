"""How fast Watchkeeper takes OTLP trace exports, what they cost in the store, and how soon
their figures show in the analysis.

The payloads are built once with the OpenTelemetry SDK's own encoder (``otlp_decode``'s
batch: 512 SERVER spans of 20 attributes each, like the OpenTelemetry Collector's
benchmark, over 20 routes), re-timed into 32 distinct batches with long-tailed durations
spread over the last five minutes, and posted as ``application/x-protobuf`` to
``POST /v1/traces`` with an ingest token made through the API, 4 exports in flight:

* **(a) spans per second** of one process, two ways: through ``httpx.ASGITransport`` into
  the app in this process (CPU time of the whole process, client included), and through a
  real ``watchkeeper serve`` (uvicorn) in a process of its own on loopback (its CPU time
  read with psutil). Spans per CPU-second is the per-core figure, set against the target
  (50,000) and the Collector's published ~12,000 spans/s per core.
* **(b) bytes stored per million spans**: the store's growth after one flush, on a fresh
  store for ``--spans`` and for twice as many over the same routes and minutes. The rows
  are per minute, route, method and status class (and flush: a minute flushed again, as
  late spans make it, writes new rows that the hourly rollup folds), so twice the spans
  should grow the store about as much: it grows with time and routes, not with spans.
* **(c) export to analysis**: in process, the time from posting an export to
  ``/performance/analysis?service=...`` showing it, with the minutes flushed at once; and
  on the running server, which stores only complete minutes (every
  ``performance_flush_seconds``, 5), the wall time for exports posted at a few moments of
  the minute (expected: the rest of the minute plus up to one flush interval).

Run from the repository root (PostgreSQL from ``WATCHKEEPER_TEST_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``; a database of its own is created
and dropped)::

    .venv/bin/python bench/ingest.py [--spans 1000000] [--backends sqlite postgresql]

Prints the figures and writes ``bench/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otlp_decode import ATTRIBUTES, BATCH, build_batch  # noqa: E402
from scratch import scratch_postgres  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.db.models import RequestMinute  # noqa: E402
from app.db.store import Store  # noqa: E402
from app.main import create_app  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ingest.json"
TOKEN = "wk_bench-admin-token-0123456789abcdefghijklmnopqrstuvw"
TARGET = 50_000
COLLECTOR_PER_CORE = 12_000
DISTINCT_BATCHES = 32
MINUTES = 5
IN_FLIGHT = 4
SERVICE = "shop"
PROTOBUF = "application/x-protobuf"
STARTUP_SECONDS = 60.0
# The running server shows a minute once it is complete and flushed: a minute and a flush.
LATENCY_DEADLINE_SECONDS = 120.0


def payloads(service: str, *, batches: int, minutes: int, seed: int = 5) -> list[bytes]:
    """``batches`` exports of ``BATCH`` spans of ``service``: long-tailed durations around a
    median per route, batch ``j`` ending ``j % minutes`` minutes ago."""
    rng = np.random.default_rng(seed)
    base = build_batch()
    (service_attribute,) = (
        a for a in base.resource_spans[0].resource.attributes if a.key == "service.name"
    )
    service_attribute.value.string_value = service
    medians_ns = np.geomspace(2e6, 400e6, 20)  # 2 ms to 400 ms, one median per route
    now_ns = time.time_ns()
    built = []
    for number in range(batches):
        message = ExportTraceServiceRequest()
        message.CopyFrom(base)
        spans = message.resource_spans[0].scope_spans[0].spans
        end_ns = now_ns - (number % minutes) * 60_000_000_000
        durations = rng.lognormal(0.0, 0.8, len(spans))
        for index, span in enumerate(spans):
            span.end_time_unix_nano = end_ns - index * 1000
            span.start_time_unix_nano = span.end_time_unix_nano - int(
                durations[index] * medians_ns[index % 20]
            )
        built.append(message.SerializeToString())
    return built


async def ingest_token(client: httpx.AsyncClient) -> str:
    """An ingest token for the exporters, made by the admin through the API."""
    admin = {"Authorization": f"Bearer {TOKEN}"}
    made = await client.post(
        "/api/v1/users", json={"username": "otel", "role": "user"}, headers=admin
    )
    assert made.status_code == 201, made.text
    issued = await client.post(
        "/api/v1/users/otel/tokens", json={"name": "bench", "kind": "ingest"}, headers=admin
    )
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


async def post_spans(
    client: httpx.AsyncClient, token: str, bodies: Sequence[bytes], spans: int
) -> float:
    """Posts ``spans`` spans (whole batches, ``IN_FLIGHT`` at a time); returns wall seconds."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": PROTOBUF}
    exports = spans // BATCH
    queue = iter(range(exports))

    async def worker() -> None:
        for number in queue:
            answer = await client.post(
                "/v1/traces", content=bodies[number % len(bodies)], headers=headers
            )
            assert answer.status_code == 200, answer.text
            partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
            assert partial.rejected_spans == 0, partial.error_message

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - started


def rates(spans: int, wall_s: float, cpu_s: float) -> dict[str, float]:
    per_cpu = spans / cpu_s
    return {
        "spans": spans,
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "spans_per_s": round(spans / wall_s),
        "spans_per_cpu_s": round(per_cpu),
        "vs_target": round(per_cpu / TARGET, 2),
        "vs_collector_per_core": round(per_cpu / COLLECTOR_PER_CORE, 2),
    }


async def stored_bytes(store: Store) -> int:
    """The size of the store: the SQLite file (WAL folded in) or the PostgreSQL database."""
    async with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            pages = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
            size = (await connection.execute(text("PRAGMA page_size"))).scalar_one()
            return int(pages) * int(size)
        # Relation files grow as pages are allocated, checkpoint or not.
        found = await connection.execute(text("SELECT pg_database_size(current_database())"))
        return int(found.scalar_one())


async def minute_rows(store: Store, service: str) -> int:
    async with store.unit_of_work() as session:
        query = select(func.count()).select_from(RequestMinute)
        return int(
            (await session.execute(query.where(RequestMinute.service == service))).scalar_one()
        )


def bench_settings(url: str) -> Settings:
    """The in-process app's settings: its background flusher waits out the run (the longest
    interval allowed), so the final flush alone writes the minutes, once each."""
    return Settings(
        database_url=url,
        admin_token=TOKEN,
        monitor_in_process=False,
        alert_dispatch_in_process=False,
        log_level="WARNING",
        performance_flush_seconds=300,
    )


async def analysed(client: httpx.AsyncClient, service: str) -> int:
    """The requests ``/performance/analysis`` shows for ``service`` in the last hour."""
    answer = await client.get(
        "/api/v1/maintenance/performance/analysis",
        params={"hours": 1, "service": service},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200, answer.text
    requests: int = answer.json()["overall"]["requests"]
    return requests


async def in_process(url: str, spans: int, bodies: Sequence[bytes]) -> dict[str, Any]:
    """(a) through ASGITransport, (b) the store's growth, (c) export to analysis, flushed."""
    app = create_app(bench_settings(url))
    async with app.router.lifespan_context(app):
        store: Store = app.state.store
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            token = await ingest_token(client)
            before = await stored_bytes(store)
            cpu_started = time.process_time()
            wall_s = await post_spans(client, token, bodies, spans)
            cpu_s = time.process_time() - cpu_started
            await app.state.request_tracking.flusher.flush()
            growth = await stored_bytes(store) - before
            rows = await minute_rows(store, SERVICE)

            (fresh,) = payloads("bench-latency", batches=1, minutes=1)
            started = time.perf_counter()
            await post_spans(client, token, [fresh], BATCH)
            await app.state.request_tracking.flusher.flush()
            assert await analysed(client, "bench-latency") == BATCH
            latency_ms = (time.perf_counter() - started) * 1000
    sent = spans // BATCH * BATCH
    return {
        "throughput": rates(sent, wall_s, cpu_s),
        "store_growth_bytes": growth,
        "minute_rows": rows,
        "bytes_per_million_spans": round(growth / sent * 1e6),
        "export_to_analysis_flushed_ms": round(latency_ms, 1),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def watchkeeper_process(url: str, directory: Path) -> Iterator[tuple[str, psutil.Process]]:
    """``watchkeeper serve`` on ``url``'s store, in a process of its own; its URL and process."""
    port = free_port()
    env = {
        **os.environ,
        "WATCHKEEPER_DATABASE_URL": url,
        "WATCHKEEPER_ADMIN_TOKEN": TOKEN,
        "WATCHKEEPER_CONFIG_FILE": str(directory / "absent.toml"),
        "WATCHKEEPER_DATA_DIR": str(directory),
        "WATCHKEEPER_MONITOR_IN_PROCESS": "false",
        "WATCHKEEPER_ALERT_DISPATCH_IN_PROCESS": "false",
        "WATCHKEEPER_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "watchkeeper"), "serve", "--port", str(port)]
    with (directory / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=directory, env=env, stdout=log, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                assert server.poll() is None, f"the server exited; see {directory / 'server.log'}"
                assert time.monotonic() < deadline, "the server did not start in time"
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield base, psutil.Process(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def latency_samples(client: httpx.AsyncClient, token: str, samples: int) -> list[float]:
    """Seconds from posting an export to the analysis showing it, for exports posted
    ``60 / samples`` seconds apart (so at different moments of the minute)."""

    async def sample(number: int) -> float:
        await asyncio.sleep(number * 60 / samples)
        service = f"bench-latency-{number}"
        (body,) = payloads(service, batches=1, minutes=1, seed=number)
        started = time.monotonic()
        await post_spans(client, token, [body], BATCH)
        while await analysed(client, service) < BATCH:
            assert time.monotonic() - started < LATENCY_DEADLINE_SECONDS, "never shown"
            await asyncio.sleep(0.25)
        return round(time.monotonic() - started, 2)

    return list(await asyncio.gather(*(sample(n) for n in range(samples))))


async def over_http(url: str, spans: int, bodies: Sequence[bytes], samples: int) -> dict[str, Any]:
    """(a) through a real server, its own CPU time; (c) on it, with its own flushing."""
    with (
        tempfile.TemporaryDirectory() as directory,
        watchkeeper_process(url, Path(directory)) as (base, process),
    ):
        limits = httpx.Limits(max_connections=IN_FLIGHT)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            token = await ingest_token(client)
            await post_spans(client, token, bodies[:1], BATCH * IN_FLIGHT)  # warm-up
            cpu_started = cpu_seconds(process)
            wall_s = await post_spans(client, token, bodies, spans)
            cpu_s = cpu_seconds(process) - cpu_started
            latencies = await latency_samples(client, token, samples) if samples else []
    return {
        "throughput": rates(spans // BATCH * BATCH, wall_s, cpu_s),
        "export_to_analysis_s": latencies,
    }


@asynccontextmanager
async def scratch_store(backend: str) -> AsyncIterator[str]:
    """A new, empty store of ``backend``, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite+aiosqlite:///{directory}/bench.db"
        return
    async with scratch_postgres() as url:
        yield url


async def run_backend(backend: str, spans: int, http_spans: int, samples: int) -> dict[str, Any]:
    bodies = payloads(SERVICE, batches=DISTINCT_BATCHES, minutes=MINUTES)
    found: dict[str, Any] = {}
    for size in (spans, 2 * spans):
        async with scratch_store(backend) as url:
            found[f"in_process_{size}"] = await in_process(url, size, bodies)
    async with scratch_store(backend) as url:
        found["uvicorn"] = await over_http(url, http_spans, bodies, samples)
    return found


def print_report(report: dict[str, Any]) -> None:
    print(
        f"OTLP/HTTP protobuf trace exports of {BATCH} spans x {ATTRIBUTES} attributes, "
        f"{IN_FLIGHT} in flight; target {TARGET:,} spans per CPU-second, "
        f"Collector ~{COLLECTOR_PER_CORE:,} per core"
    )
    header = f"{'backend':<11}{'path':<18}{'spans':>11}{'wall s':>8}{'spans/s':>10}"
    print(header + f"{'CPU s':>8}{'spans/CPU-s':>13}{'vs target':>11}{'vs Collector':>14}")
    for backend, found in report["backends"].items():
        for path, figures in found.items():
            t = figures["throughput"]
            print(
                f"{backend:<11}{path:<18}{t['spans']:>11,}{t['wall_s']:>8.1f}"
                f"{t['spans_per_s']:>10,}{t['cpu_s']:>8.1f}{t['spans_per_cpu_s']:>13,}"
                f"{t['vs_target']:>10.2f}x{t['vs_collector_per_core']:>13.2f}x"
            )
    for backend, found in report["backends"].items():
        sizes = [f for path, f in found.items() if path.startswith("in_process")]
        growth = ", ".join(
            f"{f['throughput']['spans']:,} spans: {f['store_growth_bytes']:,} bytes "
            f"({f['minute_rows']} minute rows, {f['bytes_per_million_spans']:,} per million)"
            for f in sizes
        )
        print(f"{backend:<11}store growth: {growth}")
        ratio = sizes[1]["store_growth_bytes"] / max(sizes[0]["store_growth_bytes"], 1)
        print(f"{backend:<11}twice the spans grew the store {ratio:.2f}x (1.00x: independent)")
        flushed = statistics.median(f["export_to_analysis_flushed_ms"] for f in sizes)
        print(
            f"{backend:<11}export to analysis: {flushed:.0f} ms flushed at once; running server "
            f"(complete minutes, flush every 5 s): {found['uvicorn']['export_to_analysis_s']} s"
        )


async def main(backends: list[str], spans: int, http_spans: int, samples: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "batch_spans": BATCH,
        "attributes_per_span": ATTRIBUTES,
        "in_flight": IN_FLIGHT,
        "target_spans_per_cpu_s": TARGET,
        "collector_spans_per_core": COLLECTOR_PER_CORE,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "backends": {},
    }
    for backend in backends:
        report["backends"][backend] = await run_backend(backend, spans, http_spans, samples)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--http-spans", type=int, default=500_000)
    parser.add_argument("--latency-samples", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    arguments = parser.parse_args()
    result = asyncio.run(
        main(arguments.backends, arguments.spans, arguments.http_spans, arguments.latency_samples)
    )
    print_report(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
