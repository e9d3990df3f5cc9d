"""How many authenticated reads a ``watchkeeper serve`` answers, at 1 and 2 worker
processes, and how soon a token revoked on one process is refused by another.

For each store (SQLite, PostgreSQL) and each worker count, a real ``watchkeeper serve``
(uvicorn, default settings: access log, monitor loop and dispatcher on) runs in processes of
its own, and a load generator in yet another process holds ``--connections`` keep-alive
connections on raw asyncio sockets, one request in flight on each, for ``--seconds`` after
``--warmup``:

* ``GET /healthz``: the baseline, no authentication and no store;
* ``GET /api/v1/users/me`` with a bearer token: the token cache's hot path.

The two paths take turns for ``--rounds`` rounds and each figure is the median. It prints
requests/s, p50 and p99, the server's CPU-seconds per second (all its processes: below the
worker count, the server did not get its cores), its CPU time per request, and the
generator's own CPU share (near one full core, the generator would be the bottleneck). The
target is ``/users/me`` ≥ 2,000 requests/s per process, judged on what one worker served
and on what it serves per CPU-second (the figure a busy shared host does not bend); the
ratios against ``/healthz`` and between 2 and 1 workers are printed beside it (the workers
and the generator share the machine's cores, so 2 workers cannot double on 2 cores).

**Revoke to refusal:** two ``watchkeeper serve`` replicas (one worker each) share the store.
A fresh token is used on replica B (so B holds it in its cache), revoked through replica A,
and B is asked again and again until it answers 401: the time from A's answer to B's
refusal, over ``--revocations`` rounds (target: within 1 s), and A's own next answer
(refused at once).

Run from the repository root (PostgreSQL from ``WATCHKEEPER_TEST_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``; a database of its own is created
and dropped)::

    .venv/bin/python bench/auth_throughput.py [--seconds 10] [--rounds 3] [--backends sqlite]

Writes ``bench/results/auth_throughput.json``.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from scratch import scratch_postgres

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "auth_throughput.json"
TOKEN = "wk_bench-auth-throughput-admin-token-0123456789abcdef"
ME = "/api/v1/users/me"
HEALTHZ = "/healthz"
TARGET_PER_PROCESS = 2000.0
REFUSAL_TARGET_MS = 1000.0
STARTUP_SECONDS = 120.0
REFUSAL_DEADLINE_SECONDS = 10.0
WINDOW_OPENS, WINDOW_CLOSES = "measuring", "measured"
MEDIANS = (
    "requests_per_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_per_s",
    "server_cpu_us_per_request",
    "generator_cpu_share",
)


# The load generator: runs in a process of its own (``--generate``).


@dataclass
class Sample:
    finished: float
    seconds: float
    ok: bool


async def _read_response(reader: asyncio.StreamReader) -> bool:
    """Reads one response off a keep-alive connection; whether it was a 200."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200")


async def _connection(
    host: str, port: int, request: bytes, until: float, samples: list[Sample]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (started := time.perf_counter()) < until:
            writer.write(request)
            ok = await _read_response(reader)
            finished = time.perf_counter()
            samples.append(Sample(finished, finished - started, ok))
    finally:
        writer.close()


def _quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def generate(
    url: str, path: str, token: str | None, connections: int, warmup: float, seconds: float
) -> dict[str, Any]:
    """Load on ``path`` from ``connections`` keep-alive connections; the figures of the
    ``seconds`` after ``warmup``, and this process's own CPU share over them."""
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 80
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}\r\n".encode()
    samples: list[Sample] = []
    begin = time.perf_counter()
    measure_from, until = begin + warmup, begin + warmup + seconds
    cpu_at_start = 0.0

    async def mark_the_window() -> None:
        # The parent reads the server's CPU time at these two lines.
        nonlocal cpu_at_start
        await asyncio.sleep(warmup)
        cpu_at_start = time.process_time()
        print(WINDOW_OPENS, flush=True)
        await asyncio.sleep(seconds)
        print(WINDOW_CLOSES, flush=True)

    await asyncio.gather(
        mark_the_window(),
        *(_connection(host, port, request, until, samples) for _ in range(connections)),
    )
    cpu = time.process_time() - cpu_at_start
    window = time.perf_counter() - measure_from
    measured = [sample for sample in samples if sample.finished >= measure_from]
    ordered = sorted(sample.seconds * 1000 for sample in measured)
    return {
        "requests": len(measured),
        "requests_total": len(samples),
        "failures": sum(not sample.ok for sample in measured),
        "requests_per_s": round(len(measured) / window, 1),
        "p50_ms": round(_quantile(ordered, 0.50), 2),
        "p99_ms": round(_quantile(ordered, 0.99), 2),
        "generator_cpu_share": round(cpu / window, 2),
    }


# The servers.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: psutil.Process

    def cpu_seconds(self) -> float:
        """CPU time of the server: the command and every worker it started."""
        total = 0.0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total


@contextmanager
def serving(store_url: str, directory: Path, workers: int) -> Iterator[Server]:
    """``watchkeeper serve --workers N`` on the store, its log in ``directory``."""
    port = free_port()
    env = {
        **os.environ,
        "WATCHKEEPER_DATABASE_URL": store_url,
        "WATCHKEEPER_ADMIN_TOKEN": TOKEN,
        "WATCHKEEPER_CONFIG_FILE": str(directory / "absent.toml"),
        "WATCHKEEPER_DATA_DIR": str(directory),
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers)]
    log_path = directory / f"serve-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            server = Server(f"http://127.0.0.1:{port}", psutil.Process(process.pid))
            _wait_until_every_worker_answers(server, process, workers, log_path)
            yield server
        finally:
            process.terminate()
            process.wait(timeout=60)


def _wait_until_every_worker_answers(
    server: Server, process: subprocess.Popen[bytes], workers: int, log: Path
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        assert process.poll() is None, f"serve exited; see {log}"
        assert time.monotonic() < deadline, f"serve did not start in time; see {log}"
        started = log.read_text().count("Application startup complete")
        try:
            if started >= workers and httpx.get(f"{server.url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def measure(server: Server, path: str, args: argparse.Namespace) -> dict[str, Any]:
    """The load generator on ``path`` in a process of its own: its figures, and the
    server's CPU over the generator's measured window."""
    command = [sys.executable, __file__, "--generate", server.url, path]
    command += ["--connections", str(args.connections), "--warmup", str(args.warmup)]
    command += ["--seconds", str(args.seconds)]
    if path == ME:
        command += ["--token", TOKEN]
    generator = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert generator.stdout is not None
    cpu: dict[str, float] = {}
    for line in generator.stdout:
        if line.strip() in (WINDOW_OPENS, WINDOW_CLOSES):
            cpu[line.strip()] = server.cpu_seconds()
        else:
            figures: dict[str, Any] = json.loads(line)
    if generator.wait() != 0:
        raise RuntimeError(f"the load generator failed on {path}")
    server_cpu = cpu[WINDOW_CLOSES] - cpu[WINDOW_OPENS]
    figures["server_cpu_per_s"] = round(server_cpu / args.seconds, 2)
    figures["server_cpu_us_per_request"] = round(server_cpu / figures["requests"] * 1e6)
    if figures["failures"]:
        raise RuntimeError(f"{figures['failures']} requests to {path} did not answer 200")
    return figures


# Revoke to refusal.


def _revocation_round(a: httpx.Client, b: httpx.Client, number: int) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    issued = a.post("/api/v1/users/admin/tokens", json={"name": f"bench {number}"}, headers=admin)
    issued.raise_for_status()
    headers = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert b.get(ME, headers=headers).status_code == 200  # now in B's cache
    a.delete(f"/api/v1/tokens/{issued.json()['id']}", headers=admin).raise_for_status()
    revoked = time.perf_counter()  # A has answered: the revocation is committed
    same_process = a.get(ME, headers=headers).status_code
    last_served_sent = None
    while True:
        sent = time.perf_counter()
        assert sent - revoked < REFUSAL_DEADLINE_SECONDS, "B never refused"
        if b.get(ME, headers=headers).status_code == 401:
            break
        last_served_sent = sent
    # A request is decided when B reads it, between its sending and its answer.
    return {
        "last_served_sent_after_ms": (
            None if last_served_sent is None else round((last_served_sent - revoked) * 1000, 1)
        ),
        "refused_sent_after_ms": round((sent - revoked) * 1000, 1),
        "refused_answered_after_ms": round((time.perf_counter() - revoked) * 1000, 1),
        "a_refused_at_once": same_process == 401,
    }


def revoke_to_refusal(store_url: str, directory: Path, rounds: int) -> dict[str, Any]:
    """Where B's cache stops trusting a token A revoked; the target holds when no request
    sent to B more than a second after the revocation was still served."""
    with (
        serving(store_url, directory, 1) as a,
        serving(store_url, directory, 1) as b,
        httpx.Client(base_url=a.url) as client_a,
        httpx.Client(base_url=b.url) as client_b,
    ):
        samples = [_revocation_round(client_a, client_b, n) for n in range(rounds)]
    served = [sample["last_served_sent_after_ms"] or 0.0 for sample in samples]
    refused = [sample["refused_answered_after_ms"] for sample in samples]
    return {
        "rounds": samples,
        "last_served_sent_max_ms": max(served),
        "refused_answered_median_ms": statistics.median(refused),
        "refused_answered_max_ms": max(refused),
        "a_refused_at_once": all(sample["a_refused_at_once"] for sample in samples),
    }


# The run.


@asynccontextmanager
async def store_of(backend: str, directory: Path) -> AsyncIterator[str]:
    if backend == "postgresql":
        async with scratch_postgres() as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{directory / 'watchkeeper.db'}"


def interleaved(server: Server, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each path's median figures over ``--rounds`` rounds, the paths taking turns, so a
    neighbour's burst on the shared host weighs on both alike; every round is kept."""
    rounds: dict[str, list[dict[str, Any]]] = {HEALTHZ: [], ME: []}
    for _ in range(args.rounds):
        for path, taken in rounds.items():
            taken.append(measure(server, path, args))
    summary: dict[str, dict[str, Any]] = {}
    for path, taken in rounds.items():
        summary[path] = {key: statistics.median(row[key] for row in taken) for key in MEDIANS}
        summary[path]["rounds"] = taken
    return summary


def bench_backend(
    backend: str, store_url: str, directory: Path, args: argparse.Namespace
) -> dict[str, Any]:
    figures: dict[str, Any] = {"workers": {}}
    for workers in args.workers:
        with serving(store_url, directory, workers) as server:
            figures["workers"][str(workers)] = interleaved(server, args)
    figures["revoke_to_refusal"] = revoke_to_refusal(store_url, directory, args.revocations)
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
            "workers": args.workers,
            "rounds": args.rounds,
        },
        "backends": {},
    }
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix=f"wk-auth-{backend}-") as scratch:
            async with store_of(backend, Path(scratch)) as url:
                # The servers are driven from threads: this loop only holds the database.
                results["backends"][backend] = await asyncio.to_thread(
                    bench_backend, backend, url, Path(scratch), args
                )
    return results


def report(results: dict[str, Any]) -> None:
    print(
        f"\n{'store':<11}{'workers':>8}  {'path':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU/s':>14}{'CPU µs/req':>12}{'generator CPU':>15}"
    )
    for backend, figures in results["backends"].items():
        for workers, paths in figures["workers"].items():
            for path, row in paths.items():
                print(
                    f"{backend:<11}{workers:>8}  {path:<18}{row['requests_per_s']:>9.0f}"
                    f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['server_cpu_per_s']:>14.2f}"
                    f"{row['server_cpu_us_per_request']:>12.0f}{row['generator_cpu_share']:>15.2f}"
                )
    print()
    for backend, figures in results["backends"].items():
        by_workers = figures["workers"]
        for workers, paths in by_workers.items():
            me, healthz = paths[ME], paths[HEALTHZ]
            ratio = me["requests_per_s"] / healthz["requests_per_s"]
            line = (
                f"{backend}, {workers} worker(s): /users/me {me['requests_per_s']:.0f}/s, "
                f"{ratio:.2f} x /healthz's, {me['server_cpu_us_per_request']:.0f} vs "
                f"{healthz['server_cpu_us_per_request']:.0f} CPU µs a request"
            )
            if workers == "1":
                # What one process served, and what it would serve with a core to itself.
                per_cpu_second = 1e6 / me["server_cpu_us_per_request"]
                line += (
                    f"; target >= {TARGET_PER_PROCESS:.0f}/s per process: served "
                    f"{verdict(me['requests_per_s'] >= TARGET_PER_PROCESS)}, "
                    f"{per_cpu_second:.0f} per server CPU-second "
                    f"{verdict(per_cpu_second >= TARGET_PER_PROCESS)}"
                )
            print(line)
        if "1" in by_workers and "2" in by_workers:
            one, two = by_workers["1"][ME]["requests_per_s"], by_workers["2"][ME]["requests_per_s"]
            print(f"{backend}: /users/me at 2 workers vs 1: {two / one:.2f} x")
        refusal = figures["revoke_to_refusal"]
        served_ms = refusal["last_served_sent_max_ms"]
        print(
            f"{backend}: revoked through A; B last served a request sent {served_ms:.0f} ms "
            f"after (target <= {REFUSAL_TARGET_MS:.0f} ms: "
            f"{verdict(served_ms <= REFUSAL_TARGET_MS)}), "
            f"refusals answered after median {refusal['refused_answered_median_ms']:.0f} ms, "
            f"max {refusal['refused_answered_max_ms']:.0f} ms; "
            f"A refused at once: {refusal['a_refused_at_once']}"
        )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", nargs=2, metavar=("URL", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--revocations", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.generate:
        url, path = args.generate
        figures = asyncio.run(
            generate(url, path, args.token, args.connections, args.warmup, args.seconds)
        )
        print(json.dumps(figures))
        return
    results = asyncio.run(run(args))
    report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
