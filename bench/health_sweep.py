"""Benchmark: how long a sweep of many HTTP checks takes, with some targets hanging.

Part 1 of issue 4's benchmark. Local HTTP servers on loopback run in a child process (the
monitored services live elsewhere, and this leaves the checking process its own core); each
answers ``/delay/<ms>`` after that many milliseconds and never answers ``/hang``. Then:

1. 200 targets, 20 of them hanging past their 2 s timeout: the sweep's wall time against
   the slowest single timeout (target: under 1.25x).
2. 2,000 targets answering in 50-500 ms: the sweep's wall time (target: under 10 s).

Run: ``.venv/bin/python bench/health_sweep.py``. Figures are printed and written to
``bench/results/health_sweep.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from app.vocabulary.health import CheckResult

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "health_sweep.json"
HANG_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 5.0
MIN_DELAY_MS, MAX_DELAY_MS = 50, 500
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


async def _sweep(targets: list[HttpTarget], max_concurrency: int) -> dict[str, Any]:
    async with CheckContext(max_concurrency=max_concurrency) as context:
        started = time.perf_counter()
        results = await run_checks(targets, context)
        return _summary(results, time.perf_counter() - started)


async def run(ports: Sequence[int], seed: int, max_concurrency: int) -> dict[str, Any]:
    """Run both scenarios against servers on ``ports`` and return their figures."""
    rng = random.Random(seed)

    def delays(count: int) -> list[int | None]:
        return [rng.randint(MIN_DELAY_MS, MAX_DELAY_MS) for _ in range(count)]

    mixed: list[int | None] = [None for _ in range(20)]
    mixed += delays(180)
    rng.shuffle(mixed)
    hanging = await _sweep(_targets(ports, mixed, HANG_TIMEOUT_S), max_concurrency)
    hanging["slowest_timeout_s"] = HANG_TIMEOUT_S
    hanging["ratio_to_slowest_timeout"] = round(hanging["wall_s"] / HANG_TIMEOUT_S, 3)
    hanging["target_ratio"] = 1.25
    hanging["met"] = hanging["ratio_to_slowest_timeout"] < 1.25

    answer_delays = delays(2000)
    answering = await _sweep(_targets(ports, answer_delays, ANSWER_TIMEOUT_S), max_concurrency)
    # What the servers themselves took: the rest of a measured latency is the checker's own
    # queueing for CPU, which grows with the number of checks in flight on two cores.
    answering["server_delay_ms_median"] = statistics.median(d for d in answer_delays if d)
    answering["target_wall_s"] = 10.0
    answering["met"] = answering["wall_s"] < 10.0
    return {"hanging_200": hanging, "answering_2000": answering}


def main() -> None:
    """Start the servers, run the sweeps, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=8, help="local servers to spread over")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--max-concurrency", type=int, default=CheckContext().max_concurrency)
    args = parser.parse_args()

    open_files = _raise_open_file_limit()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=_server_process, args=(args.servers, theirs), daemon=True
    )
    server.start()
    try:
        ports = ours.recv()
        figures = asyncio.run(run(ports, args.seed, args.max_concurrency))
    finally:
        ours.send("stop")
        server.join(timeout=5)
    figures["setup"] = {
        "servers": args.servers,
        "max_concurrency": args.max_concurrency,
        "open_file_limit": open_files,
        "cpus": multiprocessing.cpu_count(),
        "python": sys.version.split()[0],
    }
    hanging, answering = figures["hanging_200"], figures["answering_2000"]
    print(
        f"200 targets, 20 hanging: sweep {hanging['wall_s']:.2f} s = "
        f"{hanging['ratio_to_slowest_timeout']:.2f}x the {HANG_TIMEOUT_S:g} s timeout "
        f"(target < 1.25x) {hanging['statuses']}"
    )
    print(
        f"2,000 targets answering in {MIN_DELAY_MS}-{MAX_DELAY_MS} ms: sweep "
        f"{answering['wall_s']:.2f} s (target < 10 s) {answering['statuses']}, "
        f"latency median {answering['latency_ms_median']} ms (servers' own delay median "
        f"{answering['server_delay_ms_median']} ms), p95 {answering['latency_ms_p95']} ms"
    )
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
