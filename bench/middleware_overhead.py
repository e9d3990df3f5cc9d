"""What request metrics cost per request, ours against prometheus-fastapi-instrumentator.

For an app of 30 and of 200 routes, three variants: no instrumentation, our
``WatchkeeperMiddleware`` + ``RequestRecorder``, and the instrumentator with its
defaults. Each is driven first in process (the ASGI app called directly, no HTTP client
in the way; median of interleaved repeats), then through uvicorn on loopback under load
from ``wrk`` (or a bounded httpx loop when wrk is missing), one worker per variant started
side by side and loaded one at a time.

Through uvicorn the headline is the server's own CPU time per request: the worker's
utime + stime from ``/proc/<pid>/stat`` (in clock ticks) read before and after each run of
the load tool, divided by the requests it reports completed. Requests/s derived figures
would mix in the load tool's and the kernel's cost, which share this machine's cores; they
are kept as a second column. The workers are pinned to one CPU and the load tool to the
others. A round is a few short runs per variant, the variants taking turns, so the
machine's speed, which drifts from second to second on a shared host, weighs on all of
them alike; the round's figure is its total CPU time over its total requests, which keeps
the 10 ms tick to a fraction of a µs per request (the output states the resolution
reached). What an instrumentation adds is, round by round, its CPU µs per request minus
the bare app's of the same round, reported as the median over rounds with its spread and
a warning when the median does not stand out of it. The workers are replaced every few
rounds, because where one process happens to lay out its app in memory moves its cost by
a µs or two.

On a shared host the machine's speed wanders by more, between two runs of the load tool,
than ours costs, so ours is also measured paired: one uvicorn worker serves the bare app
and the instrumented one, each under its own prefix, the load tool's requests alternating
between them, and the worker counts the CPU time of every app call (``paired_timing.py``).
That difference is what ours adds inside the app call; what its data might cost the
server's own code outside it is only in the side-by-side figure, printed beside. The
verdict for ours at 200 routes against its 10 µs target comes from the paired rounds, from
a distribution-free 95% interval for their median (the sign test's: the k-th smallest and
k-th largest of the rounds): "ok" when the whole interval is within the target, "OVER" when
the whole of it is above, "undecided" when it straddles.

Then the accuracy of a p95 from the same long-tailed durations, read from our sketch and
from the instrumentator's two default histograms (per route and app-wide) the way
Prometheus' ``histogram_quantile`` would, and the speed of merging many stored per-minute
sketches.

Run from the repository root (needs ``pip install prometheus-fastapi-instrumentator``,
a bench-only dependency, and Linux's ``/proc``)::

    .venv/bin/python bench/middleware_overhead.py

Prints a table and writes ``bench/results/middleware_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Histogram
from prometheus_fastapi_instrumentator import Instrumentator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asgi_load import drive_asgi  # noqa: E402
from paired_timing import TIMINGS_PATH, PairedApps  # noqa: E402
from watchkeeper_agent import WatchkeeperMiddleware  # noqa: E402
from watchkeeper_agent.recorder import RequestRecorder  # noqa: E402

from app.vocabulary.sketch import QuantileSketch, from_many_bytes  # noqa: E402

VARIANTS = ("none", "ours", "instrumentator")
# One worker serving the bare app and ours, each under a prefix named after it, as long as
# the other's so that routing costs both the same. The instrumentator is left out: its
# code and data would crowd the caches the other two use, and inflate both.
PAIRED = "paired"
PAIRED_VARIANTS = ("none", "ours")
ROUTE_COUNTS = (30, 200)
RESULTS = ROOT / "bench" / "results" / "middleware_overhead.json"
# The server CPU time our middleware may add to a request served by uvicorn, at the larger app.
OURS_TARGET_US = 10.0
# How sure the interval for a median must be before it decides the verdict.
CONFIDENCE = 0.95


def build_app(routes: int, variant: str, prefix: str = "") -> FastAPI:
    """An app of ``routes`` templated GET routes under ``prefix``, instrumented as
    ``variant`` says."""
    app = FastAPI()
    for number in range(routes):
        app.add_api_route(
            f"{prefix}/resource{number}/items/{{item_id}}",
            _endpoint(),
            methods=["GET"],
            response_class=PlainTextResponse,
        )
    if variant == "ours":
        app.state.recorder = RequestRecorder()
        app.add_middleware(WatchkeeperMiddleware, recorder=app.state.recorder)
    elif variant == "instrumentator":
        Instrumentator(registry=CollectorRegistry()).instrument(app)
    elif variant != "none":
        raise ValueError(f"unknown variant {variant!r}")
    return app


def _endpoint() -> Callable[[int], Any]:
    async def read_item(item_id: int) -> str:
        return "ok"

    return read_item


def app_from_env() -> FastAPI | PairedApps:
    """The uvicorn ``--factory`` entry point: variant and size from the environment; the
    variant ``paired`` serves the bare app and ours, each under its own prefix."""
    routes, variant = int(os.environ["BENCH_ROUTES"]), os.environ["BENCH_VARIANT"]
    if variant == PAIRED:
        # Built in the order given: which app lies first in memory must not favour either.
        order = os.environ["BENCH_ORDER"].split(",")
        return PairedApps({v: build_app(routes, v, f"/{v}") for v in order})
    return build_app(routes, variant)


def request_paths(routes: int, prefix: str = "") -> list[str]:
    """One concrete path per route, so requests spread over the whole routing table."""
    return [f"{prefix}/resource{number}/items/{number * 7}" for number in range(routes)]


def paired_paths(routes: int) -> list[str]:
    """Both paired variants' paths, interleaved so that consecutive requests alternate."""
    per_variant = [request_paths(routes, f"/{v}") for v in PAIRED_VARIANTS]
    return [path for same_route in zip(*per_variant, strict=True) for path in same_route]


def recorder_of(app: FastAPI) -> RequestRecorder | None:
    """Our middleware's recorder, to empty between repeats."""
    recorder = getattr(app.state, "recorder", None)
    assert recorder is None or isinstance(recorder, RequestRecorder)
    return recorder


async def in_process(requests: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median µs per request for each route count and variant."""
    results: dict[str, dict[str, float]] = {}
    for routes in ROUTE_COUNTS:
        apps = {variant: build_app(routes, variant) for variant in VARIANTS}
        paths = request_paths(routes)
        samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        for app in apps.values():
            await drive_asgi(app, paths, 1000)  # builds the middleware stack, warms caches
        # Interleaved, so drift in machine speed falls on every variant alike.
        for _ in range(repeats):
            for variant, app in apps.items():
                recorder = recorder_of(app)
                if recorder is not None:
                    recorder.drain(final=True)
                gc.collect()
                samples[variant].append(await drive_asgi(app, paths, requests))
        results[str(routes)] = {v: statistics.median(s) for v, s in samples.items()}
    return results


def free_port() -> int:
    """A port nothing listens on right now, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(url: str, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not start serving {url}")


# One round's load: requests completed and requests per second.
LoadResult = tuple[int, float]
# /proc's CPU times count clock ticks (10 ms on Linux), the resolution of every reading.
CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def wrk_load(base_url: str, paths: Sequence[str], seconds: int, connections: int) -> LoadResult:
    """Requests completed and requests per second from wrk cycling over ``paths``."""
    quoted = ", ".join(f'"{path}"' for path in paths)
    script = (
        f"local paths = {{{quoted}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", lua.name, base_url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    completed = re.search(r"(\d+) requests in ", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if completed is None or rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return int(completed.group(1)), float(rate.group(1))


def httpx_load(base_url: str, paths: Sequence[str], seconds: int, connections: int) -> LoadResult:
    """Requests completed and requests per second from a bounded httpx loop, when wrk is
    not installed."""
    requests = seconds * 1000  # a fixed count, roughly ``seconds`` long on this machine

    async def run() -> float:
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:

            async def worker(offset: int) -> None:
                for number in range(offset, requests, connections):
                    response = await client.get(paths[number % len(paths)])
                    response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker(offset) for offset in range(connections)))
            return requests / (time.perf_counter() - started)

    return requests, asyncio.run(run())


Load = Callable[[str, Sequence[str], int, int], LoadResult]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` (all its threads) has used, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces or parentheses: count from its end. Then
    # utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S


@dataclass(frozen=True, slots=True)
class Worker:
    """A uvicorn worker serving one variant: where it listens and which process it is."""

    url: str
    pid: int


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """How the workers are loaded: ``rounds`` rounds of ``slices`` runs of the load tool
    per variant, each ``seconds`` long, over ``connections`` connections, with new workers
    every ``per_worker`` rounds."""

    seconds: int
    slices: int
    rounds: int
    connections: int
    per_worker: int


@dataclass(frozen=True, slots=True)
class LoadRound:
    """One worker's share of a round: requests completed, time under load, CPU spent."""

    requests: int
    seconds: float
    cpu_s: float
    slices: int

    @property
    def requests_per_s(self) -> float:
        """Completed requests per second of load."""
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        """The server's CPU time per completed request."""
        return self.cpu_s / self.requests * 1e6

    @property
    def tick_us_per_request(self) -> float:
        """The standard deviation, per request, that rounding to clock ticks adds.

        Each slice's CPU time is the difference of two readings truncated to a tick:
        an error spread evenly over ±1 tick in a triangle, of deviation tick / √6.
        """
        return CLOCK_TICK_S * math.sqrt(self.slices / 6) / self.requests * 1e6


def combined(parts: Sequence[LoadRound]) -> LoadRound:
    """The slices of one round as one figure: totals over all of them."""
    return LoadRound(
        requests=sum(part.requests for part in parts),
        seconds=sum(part.seconds for part in parts),
        cpu_s=sum(part.cpu_s for part in parts),
        slices=sum(part.slices for part in parts),
    )


@contextmanager
def serving(routes: int, variant: str, order: Sequence[str] = PAIRED_VARIANTS) -> Iterator[Worker]:
    """A uvicorn worker serving the app on a free loopback port (the paired variants built
    in ``order``)."""
    port = free_port()
    env = {**os.environ, "BENCH_ROUTES": str(routes), "BENCH_VARIANT": variant}
    env["BENCH_ORDER"] = ",".join(order)
    # The worker imports this module as bench.middleware_overhead, which imports its
    # sibling asgi_load as a script would: both folders on the path.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "bench"), env.get("PYTHONPATH", "")])
    # Without --workers or --reload uvicorn serves in the process it starts in, so the
    # child's pid is the one whose CPU time is the server's.
    command = [sys.executable, "-m", "uvicorn", "bench.middleware_overhead:app_from_env"]
    command += ["--factory", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield Worker(f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def apart_from_load(workers: Iterable[Worker]) -> Iterator[None]:
    """The workers pinned to one CPU and this process, so the load tool it starts, to the
    others: a worker's CPU time per request then does not depend on whether the scheduler
    happened to put it beside the load tool (on one machine it moved figures by tens of µs).
    """
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        yield
        return
    server_cpu = max(allowed)
    for worker in workers:
        os.sched_setaffinity(worker.pid, {server_cpu})
    os.sched_setaffinity(0, allowed - {server_cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def load_slice(load: Load, worker: Worker, paths: Sequence[str], plan: LoadPlan) -> LoadRound:
    """One run of the load tool on ``worker``, its CPU time read on either side."""
    before = cpu_seconds(worker.pid)
    requests, rate = load(worker.url, paths, plan.seconds, plan.connections)
    return LoadRound(requests, requests / rate, cpu_seconds(worker.pid) - before, slices=1)


def interleaved_rounds(
    load: Load,
    workers: dict[str, Worker],
    paths: Sequence[str],
    plan: LoadPlan,
    numbers: range,
) -> dict[str, list[LoadRound]]:
    """Every variant's rounds ``numbers``. Within a round the variants take turns slice by
    slice, so the machine's speed, which drifts from second to second on a shared host,
    weighs on all of them alike; each round starts with the next variant, so the order
    favours none."""
    measured: dict[str, list[LoadRound]] = {variant: [] for variant in workers}
    names = list(workers)
    for number in numbers:
        shift = number % len(names)
        order = names[shift:] + names[:shift]
        parts: dict[str, list[LoadRound]] = {variant: [] for variant in names}
        for _ in range(plan.slices):
            for variant in order:
                parts[variant].append(load_slice(load, workers[variant], paths, plan))
        for variant in names:
            measured[variant].append(combined(parts[variant]))
    return measured


def summary(rounds: Sequence[LoadRound]) -> dict[str, Any]:
    """One variant's medians over its rounds, and the rounds themselves."""
    return {
        "cpu_us_per_request": statistics.median(r.cpu_us_per_request for r in rounds),
        "requests_per_s": statistics.median(r.requests_per_s for r in rounds),
        "rounds": [
            {
                "requests": r.requests,
                "seconds": r.seconds,
                "requests_per_s": r.requests_per_s,
                "cpu_s": r.cpu_s,
                "cpu_us_per_request": r.cpu_us_per_request,
            }
            for r in rounds
        ],
    }


def load_tool() -> Load:
    """wrk when it is installed, else the bounded httpx loop."""
    return wrk_load if shutil.which("wrk") else httpx_load


def worker_spans(rounds: int, per_worker: int) -> Iterator[range]:
    """The round numbers each new worker serves: ``per_worker`` of them, the last fewer."""
    for first in range(0, rounds, per_worker):
        yield range(first, min(first + per_worker, rounds))


def under_uvicorn(plan: LoadPlan) -> dict[str, Any]:
    """The server's CPU µs per request and the requests/s of each variant served by one
    uvicorn worker, round by round, and what each instrumentation adds against the bare
    app of the same round."""
    load = load_tool()
    results: dict[str, Any] = {
        "load_tool": "wrk" if load is wrk_load else "httpx",
        "plan": asdict(plan),
        "clock_tick_ms": CLOCK_TICK_S * 1000,
    }
    for routes in ROUTE_COUNTS:
        paths = request_paths(routes)
        measured: dict[str, list[LoadRound]] = {variant: [] for variant in VARIANTS}
        # New workers every few rounds: how one process happens to lay its app out in
        # memory moves its cost by a µs or two, so the rounds come from several processes.
        for numbers in worker_spans(plan.rounds, plan.per_worker):
            with ExitStack() as servers:
                workers = {v: servers.enter_context(serving(routes, v)) for v in VARIANTS}
                for worker in workers.values():
                    wait_until_serving(worker.url + paths[0])
                with apart_from_load(workers.values()):
                    for worker in workers.values():
                        load(worker.url, paths, 1, plan.connections)  # warm-up
                    taken = interleaved_rounds(load, workers, paths, plan, numbers)
            for variant, rounds in taken.items():
                measured[variant] += rounds
        cpu = {v: [r.cpu_us_per_request for r in measured[v]] for v in VARIANTS}
        results[str(routes)] = {
            **{variant: summary(measured[variant]) for variant in VARIANTS},
            # The coarsest any round's reading got: the one with the fewest requests.
            "tick_us_per_request": max(r.tick_us_per_request for m in measured.values() for r in m),
            "added_us": {
                variant: added_cost(cpu["none"], cpu[variant]) for variant in VARIANTS[1:]
            },
        }
    return results


def paired_in_one_worker(plan: LoadPlan, rounds: int) -> dict[str, Any]:
    """The bare app's and ours' CPU µs per request in the app call when one uvicorn worker
    serves both, their requests interleaved, round by round (one run of the load tool
    each); and what ours adds against the bare app of the same round.

    A worker serves ``plan.per_worker`` rounds, and the next one builds the two apps in
    the other order, so that neither is favoured by where it lies in memory.
    """
    load = load_tool()
    seconds = plan.seconds * plan.slices
    results: dict[str, Any] = {
        "rounds": rounds,
        "seconds_per_round": seconds,
        "rounds_per_worker": plan.per_worker,
    }
    for routes in ROUTE_COUNTS:
        paths = paired_paths(routes)
        per_round: dict[str, list[float]] = {variant: [] for variant in PAIRED_VARIANTS}
        for number, span in enumerate(worker_spans(rounds, plan.per_worker)):
            order = PAIRED_VARIANTS[::-1] if number % 2 else PAIRED_VARIANTS
            with serving(routes, PAIRED, order) as worker:
                wait_until_serving(worker.url + paths[0])
                with apart_from_load([worker]):
                    load(worker.url, paths, 1, plan.connections)  # warm-up
                    for _ in span:
                        before = read_timings(worker)
                        load(worker.url, paths, seconds, plan.connections)
                        after = read_timings(worker)
                        for variant in PAIRED_VARIANTS:
                            requests = after[variant]["requests"] - before[variant]["requests"]
                            cpu_ns = after[variant]["cpu_ns"] - before[variant]["cpu_ns"]
                            per_round[variant].append(cpu_ns / requests / 1000)
        results[str(routes)] = {
            "cpu_us_per_request": {v: statistics.median(per_round[v]) for v in PAIRED_VARIANTS},
            "rounds_us": per_round,
            "added_us": {"ours": added_cost(per_round["none"], per_round["ours"])},
        }
    return results


def read_timings(worker: Worker) -> dict[str, dict[str, int]]:
    """The paired worker's requests and CPU nanoseconds per variant, since it started."""
    response = httpx.get(worker.url + TIMINGS_PATH, timeout=10.0)
    response.raise_for_status()
    timings: dict[str, dict[str, int]] = response.json()
    return timings


def added_cost(bare_us: Sequence[float], instrumented_us: Sequence[float]) -> dict[str, Any]:
    """µs an instrumentation adds per request, from the rounds' µs per request of the bare
    app and of the instrumented one: the median of the per-round differences, their spread,
    and whether the figure stands out of it."""
    added = [ours - base for base, ours in zip(bare_us, instrumented_us, strict=True)]
    median = statistics.median(added)
    # Half the range of the per-round differences: how far one round may wander.
    spread = (max(added) - min(added)) / 2
    # The bare app's own round-to-round wander, for scale.
    bare_spread = (max(bare_us) - min(bare_us)) / 2
    warning = None
    if median <= 0:
        warning = "negative or zero: the cost is below this machine's noise"
    elif median <= spread:
        warning = f"within noise: ±{spread:.1f} µs between rounds"
    return {
        "median": median,
        "median_interval": median_interval(added),
        "rounds": added,
        "spread": spread,
        "bare_spread": bare_spread,
        "warning": warning,
    }


def median_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> dict[str, float] | None:
    """An interval holding the median of what ``values`` were drawn from, with at least
    ``confidence``, whatever their distribution; None when too few values reach it.

    Each value falls above the median with probability ½, independently, so the k-th
    smallest and the k-th largest miss it only when fewer than k fall on one side: twice a
    binomial tail. k is the largest rank that keeps the miss within ``1 - confidence``.
    """
    ordered = sorted(values)
    count = len(ordered)

    def missed(rank: int) -> float:
        return 2 * sum(math.comb(count, below) for below in range(rank)) / (1 << count)

    ranks = [rank for rank in range(1, count // 2 + 1) if missed(rank) <= 1 - confidence]
    if not ranks:
        return None
    rank = max(ranks)
    return {
        "low": ordered[rank - 1],
        "high": ordered[count - rank],
        "confidence": 1 - missed(rank),
    }


def verdict(interval: dict[str, float] | None, target: float) -> str:
    """Whether a cost whose median lies in ``interval`` meets ``target``, and if undecided,
    why."""
    if interval is None:
        return f"undecided: too few rounds for a {CONFIDENCE:.0%} interval"
    if interval["high"] <= target:
        return "ok"
    if interval["low"] > target:
        return "OVER"
    return "undecided: the interval straddles the target; rerun with more rounds"


# Median of the bulk of requests, in ms: a typical route and a slow one whose p95 passes 1 s.
ROUTE_MEDIANS_MS = {"typical_route": 80.0, "slow_route": 400.0}


def long_tailed_durations(count: int, median_ms: float, seed: int = 2024) -> np.ndarray:
    """Milliseconds: lognormal around ``median_ms`` plus a 5% tail ~20 times slower."""
    rng = np.random.default_rng(seed)
    body = rng.lognormal(mean=np.log(median_ms), sigma=0.8, size=count)
    tail = rng.lognormal(mean=np.log(median_ms * 20), sigma=0.5, size=count)
    values: np.ndarray = np.where(rng.random(count) < 0.05, tail, body)
    return values


def histogram_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float:
    """Prometheus' ``histogram_quantile`` over cumulative bucket counts (``le`` bounds)."""
    rank = q * cumulative[-1]
    for position, (bound, seen) in enumerate(zip(bounds, cumulative, strict=True)):
        if seen >= rank:
            if bound == float("inf"):
                # Prometheus answers the highest finite bound for ranks in the +Inf bucket.
                return bounds[position - 1]
            lower = bounds[position - 1] if position else 0.0
            below = cumulative[position - 1] if position else 0.0
            return lower + (bound - lower) * (rank - below) / (seen - below)
    raise AssertionError("rank beyond the last bucket")


def instrumentator_p95(values_ms: np.ndarray, buckets: Sequence[float]) -> float:
    """The p95 in ms that Prometheus would report from a histogram with ``buckets``."""
    registry = CollectorRegistry()
    histogram = Histogram("duration_seconds", "bench", buckets=buckets, registry=registry)
    for value in (values_ms / 1000).tolist():
        histogram.observe(value)
    samples = [
        sample
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.endswith("_bucket")
    ]
    bounds = [float(sample.labels["le"]) for sample in samples]
    return histogram_quantile(0.95, bounds, [sample.value for sample in samples]) * 1000


def accuracy(count: int, median_ms: float) -> dict[str, Any]:
    """p95 of the same durations from numpy, our sketch and the instrumentator's buckets."""
    values = long_tailed_durations(count, median_ms)
    exact = float(np.quantile(values, 0.95, method="lower"))
    defaults = inspect.signature(Instrumentator.instrument).parameters
    # Its two default histograms: per route (handler label) with three buckets, and one
    # for the whole app, without labels, with 21.
    buckets = {
        "instrumentator_per_route": defaults["latency_lowr_buckets"].default,
        "instrumentator_app_wide": defaults["latency_highr_buckets"].default,
    }
    estimates = {
        "ours": QuantileSketch.of(values.tolist()).quantile(0.95),
        **{name: instrumentator_p95(values, bounds) for name, bounds in buckets.items()},
    }
    return {
        "requests": count,
        "exact_p95_ms": exact,
        "max_ms": float(values.max()),
        "instrumentator_buckets_s": {name: list(map(float, b)) for name, b in buckets.items()},
        "p95_ms": estimates,
        "relative_error": {
            name: abs(estimate - exact) / exact
            for name, estimate in estimates.items()
            if estimate is not None
        },
    }


def merge_speed(sketches: int, repeats: int = 3) -> dict[str, float]:
    """Time to merge many serialised per-minute sketches of ~60 requests each."""
    rng = np.random.default_rng(5)
    distinct = [
        QuantileSketch.of(long_tailed_durations(60, 80.0, seed=int(seed)).tolist()).to_bytes()
        for seed in rng.integers(0, 2**31, size=500)
    ]
    blobs = [distinct[number % len(distinct)] for number in range(sketches)]
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        merged = from_many_bytes(blobs)
        timings.append(time.perf_counter() - started)
    assert merged.count == 60 * sketches
    return {
        "sketches": sketches,
        "mean_bytes": float(np.mean([len(blob) for blob in blobs])),
        "merge_ms": statistics.median(timings) * 1000,
    }


def report_uvicorn(uvicorn: dict[str, Any]) -> None:
    """Print the uvicorn rounds: the server's CPU per request, what each instrumentation
    adds to it, and the verdict on ours at the larger app."""
    plan = uvicorn["plan"]
    print(
        f"\nuvicorn, load from {uvicorn['load_tool']} ({plan['connections']} connections;"
        f" {plan['rounds']} rounds, each {plan['slices']} interleaved runs of"
        f" {plan['seconds']} s per variant, new workers every {plan['per_worker']}):"
        " server CPU µs/request | requests/s, medians"
    )
    for routes in map(str, ROUTE_COUNTS):
        row = uvicorn[routes]
        cells = "  ".join(
            f"{v} {row[v]['cpu_us_per_request']:6.1f} | {row[v]['requests_per_s']:6.0f}"
            for v in VARIANTS
        )
        print(f"  {routes + ' routes':<12}{cells}")
        print(
            f"  {'':<12}resolution: CPU time in {uvicorn['clock_tick_ms']:g} ms clock ticks,"
            f" ±{row['tick_us_per_request']:.2f} µs/request (1 sd) in a round at most"
        )
        for variant, added in row["added_us"].items():
            report_added(variant, added, "of CPU a request")


def report_added(variant: str, added: dict[str, Any], what: str) -> None:
    """One instrumentation's added cost: its median, the rounds, and any noise warning."""
    rounds = ", ".join(f"{value:.1f}" for value in added["rounds"])
    print(
        f"  {'':<12}{variant} adds {added['median']:.1f} µs {what} "
        f"(rounds: {rounds}; spread ±{added['spread']:.1f}, bare app's "
        f"±{added['bare_spread']:.1f})"
    )
    if added["warning"]:
        print(f"  {'':<12}WARNING: {variant}'s figure is {added['warning']}")


def report_paired(paired: dict[str, Any]) -> None:
    """Print the rounds of the worker serving the bare app and ours together."""
    print(
        f"\none uvicorn worker serving the bare app and ours, requests interleaved"
        f" ({paired['rounds']} rounds of {paired['seconds_per_round']} s, a new worker every"
        f" {paired['rounds_per_worker']}): CPU µs/request in the app call, medians"
    )
    for routes in map(str, ROUTE_COUNTS):
        row = paired[routes]
        cells = "  ".join(f"{v} {row['cpu_us_per_request'][v]:6.1f}" for v in PAIRED_VARIANTS)
        print(f"  {routes + ' routes':<12}{cells}")
        for variant, added in row["added_us"].items():
            report_added(variant, added, "a request")


def report_verdict(results: dict[str, Any]) -> None:
    """The verdict on ours at the larger app, from the paired rounds when they ran (the
    finer measure), with the side-by-side workers' figure beside it."""
    routes = str(max(ROUTE_COUNTS))
    measures = [
        ("in one worker, paired", "paired", "of CPU in the app call"),
        ("side by side", "uvicorn", "of server CPU"),
    ]
    ran = [(name, results[key], what) for name, key, what in measures if results.get(key)]
    for position, (name, measured, what) in enumerate(ran):
        added = measured[routes]["added_us"]["ours"]
        interval = added["median_interval"]
        within = (
            f", {interval['confidence']:.0%} interval"
            f" {interval['low']:.1f} to {interval['high']:.1f}"
            if interval
            else ""
        )
        said = verdict(interval, OURS_TARGET_US) if position == 0 else "for comparison"
        print(
            f"  ours at {routes} routes through uvicorn ({name}): median {added['median']:.1f}"
            f" µs {what} a request{within} (target ≤ {OURS_TARGET_US:g} µs): {said}"
        )


def report(results: dict[str, Any]) -> None:
    """Print the figures as a table a person can read."""
    print(f"\n{'in process (µs/request)':<28}{'none':>9}{'ours':>9}{'instr.':>9}", end="")
    print(f"{'ours +':>9}{'instr. +':>10}{'ratio':>8}")
    for routes, row in results["in_process"].items():
        ours, theirs = row["ours"] - row["none"], row["instrumentator"] - row["none"]
        print(f"  {routes + ' routes':<26}{row['none']:9.1f}{row['ours']:9.1f}", end="")
        print(f"{row['instrumentator']:9.1f}{ours:9.1f}{theirs:10.1f}{ours / theirs:8.2f}")
    if results.get("uvicorn"):
        report_uvicorn(results["uvicorn"])
    if results.get("paired"):
        report_paired(results["paired"])
    report_verdict(results)
    for route, figures in results["accuracy"].items():
        print(
            f"\np95 of {figures['requests']} long-tailed durations, {route}"
            f" (max {figures['max_ms']:.0f} ms)"
        )
        print(f"  {'exact (numpy, method=lower)':<30}{figures['exact_p95_ms']:10.1f} ms")
        for name, value in figures["p95_ms"].items():
            error = figures["relative_error"][name]
            bounds = figures["instrumentator_buckets_s"].get(name)
            said = (
                f"   ({len(bounds)} buckets up to {bounds[-1]:g} s"
                + (", one for the whole app)" if name.endswith("app_wide") else ", per route)")
                if bounds
                else "   (per route)"
            )
            print(f"  {name:<30}{value:10.1f} ms   relative error {error:7.2%}{said}")
    merge = results["merge"]
    print(
        f"\nmerge of {merge['sketches']} serialised sketches ({merge['mean_bytes']:.0f} B each):"
        f" {merge['merge_ms']:.0f} ms"
    )


def main() -> None:
    """Run every measurement, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="per in-process repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--load-seconds", type=int, default=2, help="per run of wrk")
    parser.add_argument("--slices", type=int, default=4, help="runs per variant and round")
    # A multiple of three, so every variant leads as many rounds; 12 give a 96% interval
    # for the median from the 3rd to the 10th of them.
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--connections", type=int, default=32)
    # Each paired round is one run of the load tool as long as a side-by-side round's share
    # of one variant; 24 give a 98% interval for the median from the 7th to the 18th.
    parser.add_argument("--paired-rounds", type=int, default=24)
    parser.add_argument("--rounds-per-worker", type=int, default=3)
    parser.add_argument("--skip-uvicorn", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "in_process": asyncio.run(in_process(args.requests, args.repeats)),
    }
    if not args.skip_uvicorn:
        plan = LoadPlan(
            args.load_seconds, args.slices, args.rounds, args.connections, args.rounds_per_worker
        )
        results["uvicorn"] = under_uvicorn(plan)
        results["paired"] = paired_in_one_worker(plan, args.paired_rounds)
    results["accuracy"] = {
        route: accuracy(200_000, median) for route, median in ROUTE_MEDIANS_MS.items()
    }
    results["merge"] = merge_speed(100_000)
    report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
