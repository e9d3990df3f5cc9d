"""Benchmark: how long a sweep of many HTTP checks takes, and whether the latency it reports
is the targets' own or our queueing.

Local HTTP servers on loopback run in a child process (the monitored services live
elsewhere, and this leaves the checking process its own core); each answers
``/delay/<ms>`` after that many milliseconds and never answers ``/hang``. Every scenario
is swept twice in one run, alternating: paced as the runner does (``LoopPacer``: checks
start no faster than the event loop keeps up) and, as the baseline, every check started at
once as before issue 15 (``LoopPacer`` with no budget). Both time the round trip from the
client's trace events (connect to response headers); the code before issue 15 also timed
the wait for the shared client's pool, so its own figures were higher still (issue 15:
500 instant targets ~500 ms median, 2,000 x 279 ms 925-1,216 ms).

1. 500 targets answering at once: reported median < 20 ms and p95 < 50 ms.
2. 2,000 targets answering after 279 ms: reported median within 10% of 279 ms.
3. 200 targets, 20 of them hanging past their 2 s timeout: wall time < 1.25x the timeout.
4. 2,000 targets answering in 50-500 ms: wall time < 10 s, median against the servers'.

Wall time must be as the baseline's or better (the ratio is printed).

Run: ``.venv/bin/python bench/health_sweep.py [--servers 8] [--scale 1.0]`` (``--scale``
shrinks every target count, for a quick look). Figures are printed and written to
``bench/results/health_sweep.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.health.checks import CheckContext, run_checks
from app.services.health.checks.http import HttpTarget
from app.services.health.checks.pacing import LoopPacer
from app.vocabulary.health import CheckResult

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "health_sweep.json"
HANG_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 5.0
MIN_DELAY_MS, MAX_DELAY_MS = 50, 500
FIXED_DELAY_MS = 279
INSTANT_MEDIAN_MS, INSTANT_P95_MS = 20.0, 50.0
# Two runs of the same sweep differ by this much on a shared machine.
WALL_NOISE = 0.10
# Enough sockets for 2,000 client connections plus headroom for the runtime's own files.
WANTED_OPEN_FILES = 8192


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        path = request_line.split(" ")[1] if " " in request_line else "/"
        if path == "/hang":
            await reader.read()  # until the checker gives up and closes
            return
        await asyncio.sleep(int(path.removeprefix("/delay/")) / 1000)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except (ConnectionError, ValueError, IndexError):
        pass
    finally:
        writer.close()


async def _serve(server_count: int, pipe: Connection) -> None:
    servers = [
        await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=4096)
        for _ in range(server_count)
    ]
    pipe.send([server.sockets[0].getsockname()[1] for server in servers])
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # wait for "stop"


def _server_process(server_count: int, pipe: Connection) -> None:
    _raise_open_file_limit()
    asyncio.run(_serve(server_count, pipe))


def _raise_open_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, WANTED_OPEN_FILES)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return max(soft, wanted)


def _targets(
    ports: Sequence[int], delays_ms: Sequence[int | None], timeout_s: float
) -> list[HttpTarget]:
    """One target per delay (None means a hanging one), spread over the servers."""
    targets = []
    for index, delay in enumerate(delays_ms):
        path = "/hang" if delay is None else f"/delay/{delay}"
        url = f"http://127.0.0.1:{ports[index % len(ports)]}{path}"
        targets.append(HttpTarget(kind="http", name=f"api-{index}", url=url, timeout_s=timeout_s))
    return targets


def _summary(results: list[CheckResult], wall_s: float) -> dict[str, Any]:
    latencies = sorted(result.latency_ms for result in results if result.latency_ms is not None)
    return {
        "targets": len(results),
        "wall_s": round(wall_s, 3),
        "statuses": dict(Counter(str(result.status) for result in results)),
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1)
        if latencies
        else None,
    }


# Every check started at once, as the runner did before issue 15.
ALL_AT_ONCE = LoopPacer(budget_s=math.inf, max_wait_s=0.0)


async def _sweep(
    targets: list[HttpTarget], max_concurrency: int, pacer: LoopPacer
) -> dict[str, Any]:
    async with CheckContext(max_concurrency=max_concurrency, pacer=pacer) as context:
        started = time.perf_counter()
        results = await run_checks(targets, context)
        return _summary(results, time.perf_counter() - started)


async def _both(targets: list[HttpTarget], max_concurrency: int) -> dict[str, Any]:
    """The scenario paced (ours) and all at once (the baseline), baseline first."""
    baseline = await _sweep(targets, max_concurrency, ALL_AT_ONCE)
    ours = await _sweep(targets, max_concurrency, LoopPacer())
    return {
        "ours": ours,
        "baseline": baseline,
        "wall_ratio": round(ours["wall_s"] / baseline["wall_s"], 2),
    }


async def run(
    ports: Sequence[int], seed: int, max_concurrency: int, scale: float
) -> dict[str, Any]:
    """Run every scenario against servers on ``ports`` and return their figures."""
    rng = random.Random(seed)

    def count(full: int) -> int:
        return max(1, round(full * scale))

    def delays(how_many: int) -> list[int | None]:
        return [rng.randint(MIN_DELAY_MS, MAX_DELAY_MS) for _ in range(how_many)]

    # Warm the client code and the servers once, outside every figure.
    await _sweep(_targets(ports, [0] * 20, ANSWER_TIMEOUT_S), max_concurrency, LoopPacer())

    instant = await _both(_targets(ports, [0] * count(500), ANSWER_TIMEOUT_S), max_concurrency)
    instant["met"] = (
        instant["ours"]["latency_ms_median"] < INSTANT_MEDIAN_MS
        and instant["ours"]["latency_ms_p95"] < INSTANT_P95_MS
        and instant["wall_ratio"] <= 1.0 + WALL_NOISE
    )
    fixed = await _both(
        _targets(ports, [FIXED_DELAY_MS] * count(2000), ANSWER_TIMEOUT_S), max_concurrency
    )
    fixed["median_error"] = round(fixed["ours"]["latency_ms_median"] / FIXED_DELAY_MS - 1, 3)
    fixed["met"] = abs(fixed["median_error"]) < 0.10 and fixed["wall_ratio"] <= 1.0 + WALL_NOISE

    mixed: list[int | None] = [None for _ in range(count(20))]
    mixed += delays(count(180))
    rng.shuffle(mixed)
    hanging = await _both(_targets(ports, mixed, HANG_TIMEOUT_S), max_concurrency)
    hanging["ratio_to_slowest_timeout"] = round(hanging["ours"]["wall_s"] / HANG_TIMEOUT_S, 3)
    hanging["met"] = hanging["ratio_to_slowest_timeout"] < 1.25

    answer_delays = delays(count(2000))
    answering = await _both(_targets(ports, answer_delays, ANSWER_TIMEOUT_S), max_concurrency)
    answering["server_delay_ms_median"] = statistics.median(d for d in answer_delays if d)
    answering["met"] = answering["ours"]["wall_s"] < 10.0
    return {
        "instant_500": instant,
        "delay_279ms_2000": fixed,
        "hanging_200": hanging,
        "answering_2000": answering,
    }


def _line(name: str, scenario: dict[str, Any], target: str) -> str:
    ours, baseline = scenario["ours"], scenario["baseline"]
    return (
        f"{name:<34}{ours['latency_ms_median']:>8}{ours['latency_ms_p95']:>8}{ours['wall_s']:>8.2f}"
        f"{baseline['latency_ms_median']:>10}{baseline['latency_ms_p95']:>8}"
        f"{baseline['wall_s']:>8.2f}{scenario['wall_ratio']:>7.2f}  {target}: "
        f"{'met' if scenario['met'] else 'NOT MET'}"
    )


def show(figures: dict[str, Any]) -> None:
    """The figures, ours beside the baseline's."""
    print(f"{'':<34}{'ours: median':>14}{'p95':>8}{'wall s':>8}")
    print(
        f"{'scenario (latency ms)':<34}{'':>8}{'':>8}{'':>8}{'baseline':>10}{'p95':>8}"
        f"{'wall s':>8}{'wall x':>7}"
    )
    print(
        _line(
            f"{figures['instant_500']['ours']['targets']} instant",
            figures["instant_500"],
            f"median < {INSTANT_MEDIAN_MS:g}, p95 < {INSTANT_P95_MS:g}, wall <= baseline",
        )
    )
    fixed = figures["delay_279ms_2000"]
    print(
        _line(
            f"{fixed['ours']['targets']} x {FIXED_DELAY_MS} ms",
            fixed,
            f"median {fixed['median_error']:+.1%} off {FIXED_DELAY_MS} ms (< 10%)",
        )
    )
    hanging = figures["hanging_200"]
    print(
        _line(
            f"{hanging['ours']['targets']}, {hanging['ours']['statuses'].get('unhealthy')} hanging",
            hanging,
            f"wall {hanging['ratio_to_slowest_timeout']:.2f}x the {HANG_TIMEOUT_S:g} s timeout",
        )
    )
    answering = figures["answering_2000"]
    print(
        _line(
            f"{answering['ours']['targets']} x {MIN_DELAY_MS}-{MAX_DELAY_MS} ms",
            answering,
            f"wall < 10 s; servers' own median {answering['server_delay_ms_median']} ms",
        )
    )


def main() -> None:
    """Start the servers, run the sweeps, print and save the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", type=int, default=8, help="local servers to spread over")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--max-concurrency", type=int, default=CheckContext().max_concurrency)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every target count")
    args = parser.parse_args()

    open_files = _raise_open_file_limit()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=_server_process, args=(args.servers, theirs), daemon=True
    )
    server.start()
    try:
        ports = ours.recv()
        figures = asyncio.run(run(ports, args.seed, args.max_concurrency, args.scale))
    finally:
        ours.send("stop")
        server.join(timeout=5)
    figures["setup"] = {
        "servers": args.servers,
        "max_concurrency": args.max_concurrency,
        "scale": args.scale,
        "open_file_limit": open_files,
        "cpus": multiprocessing.cpu_count(),
        "python": sys.version.split()[0],
    }
    show(figures)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
