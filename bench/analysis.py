"""How fast the performance analysis answers over a month of traffic, how that grows with the
number of routes, and how accurate it is.

For each route count asked (``--routes 50,200,1000``, each route served by every one of
``--services`` services), builds 10 million synthetic requests over 30 days (long-tailed
durations, a few failing routes, Zipf-like popularity, a daily rhythm) and stores them the
way a running server leaves them: day rows for every complete day, hour rows for every
complete hour (marked rolled up, except the current day's), minute rows for the last two
days (marked rolled up, except the current hour's). The sketches are built with
numpy (``encode_groups``) straight from the durations; no request goes through HTTP.

Then, on a store of its own per size:

* times ``/performance/analysis?hours=24``, ``?hours=720`` and ``/bottlenecks?days=7``
  through the app in process, every call a full answer from the store (nothing is cached
  between calls). Targets, PostgreSQL: 150 ms, 500 ms, 1 s;
* times the read behind each analysis window, the current one against the one it replaced
  (every stored row to Python, merged per endpoint with ``from_many_bytes``, quantiles
  walked by ``QuantileSketch``) on the same windows, checks both give the same quantiles,
  and prints the ratio;
* compares every p50/p95/p99 the analysis returns, overall and per endpoint, with numpy's
  exact percentiles (``method="lower"``) of the durations in the window the answer reports
  (target: ≤ 1% relative error).

Run from the repository root (PostgreSQL from ``WATCHKEEPER_TEST_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``; a database of its own is created
and dropped for each size)::

    .venv/bin/python bench/analysis.py [--routes 50,200,1000] [--services 3]
        [--requests 10000000] [--backends postgresql sqlite] [--repeats 5]

Prints a table per store and size, then how each figure grows with the routes, and writes
``bench/results/analysis.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import and_, false, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import scratch_postgres  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.core.hours import day_floor, hour_ceil, hour_floor  # noqa: E402
from app.db.models import RequestDay, RequestHour, RequestMinute  # noqa: E402
from app.db.store import Store  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.performance.figures import read_segments  # noqa: E402
from app.vocabulary.performance import SELF_SERVICE, RequestSource, StatusClass  # noqa: E402
from app.vocabulary.sketch import encode_groups, from_many_bytes  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "analysis.json"
DAYS = 30
TOKEN = "wk_bench-admin-token-0123456789abcdefghijklmnopqrstuvw"
TARGETS_MS = {"analysis?hours=24": 150, "analysis?hours=720": 500, "bottlenecks?days=7": 1000}
CLASSES = (StatusClass.SUCCESS, StatusClass.CLIENT_ERROR, StatusClass.SERVER_ERROR)
QUANTILES = (0.5, 0.95, 0.99)
INSERT_CHUNK = 20_000
PATH = "/api/v1/maintenance/performance"


@dataclass(frozen=True)
class Shape:
    """Which endpoints there are: every route of every service."""

    routes: int
    services: int

    @property
    def endpoints(self) -> int:
        return self.routes * self.services

    def name(self, endpoint: int) -> tuple[str, str, str]:
        """Service, method and route of an endpoint number."""
        service, route = divmod(endpoint, self.routes)
        return f"svc{service}", "GET" if route % 4 else "POST", f"/api/v1/resource{route}/{{id}}"


@dataclass
class Traffic:
    """Every synthetic request: when (seconds before now), which endpoint, class, duration."""

    age_s: np.ndarray
    endpoint: np.ndarray
    klass: np.ndarray
    duration_ms: np.ndarray


def synthesize(requests: int, shape: Shape, seed: int = 7) -> Traffic:
    """Long-tailed durations per endpoint, Zipf-like popularity, a daily rhythm."""
    rng = np.random.default_rng(seed)
    count = shape.endpoints
    popularity = (1 / np.arange(1, count + 1) ** 0.8)[rng.permutation(count)]
    endpoint = rng.choice(count, size=requests, p=popularity / popularity.sum()).astype(np.int64)
    # More traffic by day than by night: accept each request by a sine of its hour.
    age_s = rng.uniform(0, DAYS * 86_400, size=requests * 2)
    keep = rng.uniform(size=age_s.size) < 0.6 + 0.4 * np.sin(age_s / 86_400 * 2 * np.pi)
    age_s = age_s[keep][:requests]
    assert age_s.size == requests, "daily rhythm rejected too many samples"
    median_ms = np.geomspace(3, 900, count)[rng.permutation(count)]
    sigma = rng.uniform(0.3, 1.1, count)
    duration = np.exp(np.log(median_ms[endpoint]) + sigma[endpoint] * rng.standard_normal(requests))
    error_rate = np.where(np.arange(count) % 10 == 3, 0.03, 0.001)
    draw = rng.uniform(size=requests)
    klass = np.where(draw < error_rate[endpoint], 2, np.where(draw < 0.04, 1, 0)).astype(np.int64)
    return Traffic(age_s, endpoint, klass, duration)


def rows(
    traffic: Traffic, shape: Shape, now: datetime, *, step_s: int, since_s: float | None
) -> list[dict[str, Any]]:
    """One row per (time step, endpoint, class) with requests, built with numpy."""
    mask = np.ones(traffic.age_s.size, bool) if since_s is None else traffic.age_s < since_s
    moments = now.timestamp() - traffic.age_s[mask]
    slot = (moments // step_s).astype(np.int64)
    first = int(slot.min())
    per_slot = shape.endpoints * len(CLASSES)
    key = ((slot - first) * shape.endpoints + traffic.endpoint[mask]) * len(CLASSES)
    keys, group = np.unique(key + traffic.klass[mask], return_inverse=True)
    durations = traffic.duration_ms[mask]
    blobs = encode_groups(durations, group.astype(np.int64), keys.size)
    counts = np.bincount(group, minlength=keys.size)
    sums = np.bincount(group, weights=durations, minlength=keys.size)
    maxima = np.full(keys.size, -np.inf)
    np.maximum.at(maxima, group, durations)
    found = []
    for n, k in enumerate(keys.tolist()):
        step, rest = divmod(k, per_slot)
        endpoint, klass = divmod(rest, len(CLASSES))
        service, method, route = shape.name(endpoint)
        found.append(
            {
                "at": datetime.fromtimestamp((step + first) * step_s, UTC),
                "service": service,
                "source": RequestSource.SELF,
                "route": route,
                "method": method,
                "status_class": CLASSES[klass],
                "count": int(counts[n]),
                "sum_ms": float(sums[n]),
                "max_ms": float(maxima[n]),
                "sketch": blobs[n],
                "exemplars": [],
            }
        )
    return found


async def load(store: Store, traffic: Traffic, shape: Shape, now: datetime) -> dict[str, int]:
    """Stores the traffic as a server that ran for 30 days would have left it."""
    current_hour, current_day = hour_floor(now), day_floor(now)
    days = [
        {**{k: v for k, v in row.items() if k != "at"}, "day": row["at"]}
        for row in rows(traffic, shape, now, step_s=86_400, since_s=None)
        if row["at"] < current_day
    ]
    hours = [
        {
            **{k: v for k, v in row.items() if k != "at"},
            "hour": row["at"],
            "rolled_up": row["at"] < current_day,
        }
        for row in rows(traffic, shape, now, step_s=3600, since_s=None)
        if row["at"] < current_hour
    ]
    minutes = [
        {
            **{k: v for k, v in row.items() if k != "at"},
            "minute": row["at"],
            "process": "bench",
            "rolled_up": row["at"] < current_hour,
        }
        for row in rows(traffic, shape, now, step_s=60, since_s=2 * 86_400)
    ]
    for table, batch in ((RequestDay, days), (RequestHour, hours), (RequestMinute, minutes)):
        for start in range(0, len(batch), INSERT_CHUNK):
            async with store.unit_of_work() as session:
                await session.execute(insert(table), batch[start : start + INSERT_CHUNK])
    async with store.engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
    return {"day_rows": len(days), "hour_rows": len(hours), "minute_rows": len(minutes)}


def exact_quantiles(
    traffic: Traffic, shape: Shape, now: datetime, window: dict[str, Any]
) -> dict[tuple[str, str, str] | str, list[float]]:
    """numpy's percentiles of the durations in the answer's window: overall, per endpoint."""
    start = datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    inside = traffic.age_s <= (now - start).total_seconds()
    found: dict[tuple[str, str, str] | str, list[float]] = {
        "overall": _percentiles(traffic.duration_ms[inside])
    }
    by_endpoint = np.argsort(traffic.endpoint[inside], kind="stable")
    ordered = traffic.endpoint[inside][by_endpoint]
    durations = traffic.duration_ms[inside][by_endpoint]
    bounds = np.searchsorted(ordered, np.arange(shape.endpoints + 1))
    for endpoint in range(shape.endpoints):
        if bounds[endpoint + 1] > bounds[endpoint]:
            found[shape.name(endpoint)] = _percentiles(
                durations[bounds[endpoint] : bounds[endpoint + 1]]
            )
    return found


def _percentiles(durations: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(durations, [50, 95, 99], method="lower")]


def worst_error(answer: dict[str, Any], exact: dict[Any, list[float]]) -> float:
    """The largest relative error of any p50/p95/p99 in the answer."""
    measured: dict[Any, dict[str, Any]] = {"overall": answer["overall"]}
    measured.update({(e["service"], e["method"], e["route"]): e for e in answer["endpoints"]})
    worst = 0.0
    for name, truth in exact.items():
        for key, value in zip(("median_ms", "p95_ms", "p99_ms"), truth, strict=True):
            worst = max(worst, abs(measured[name][key] - value) / value)
    return worst


async def timed(call: Callable[[], Awaitable[Any]], repeats: int) -> tuple[dict[str, float], Any]:
    """Median and best of ``repeats`` calls (after one warm-up), and the last result."""
    result = await call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "best_ms": round(min(samples), 1)}, (
        result
    )


async def time_endpoints(client: httpx.AsyncClient, repeats: int) -> dict[str, dict[str, Any]]:
    """Each endpoint timed through the app; its answer kept for the accuracy check."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    found: dict[str, dict[str, Any]] = {}
    for query, target in TARGETS_MS.items():

        async def call(query: str = query) -> dict[str, Any]:
            response = await client.get(f"{PATH}/{query}", headers=headers)
            assert response.status_code == 200, response.text
            return dict(response.json())

        timing, answer = await timed(call, repeats)
        found[query] = {**timing, "target_ms": target, "answer": answer}
    return found


async def baseline_segments(
    session: AsyncSession, bounds: Sequence[datetime]
) -> list[dict[tuple[str, str, str], list[float | None]]]:
    """The read this change replaced: every stored row of each window to Python (the same
    columns, tallied per endpoint), its sketches merged per endpoint with
    ``from_many_bytes``, quantiles walked by ``QuantileSketch``."""
    found = []
    connection = await session.connection()
    for since, until in itertools.pairwise(bounds):
        tallies: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, 0.0, 0.0, []])
        for statement in _baseline_statements(since, until):
            for (
                service,
                route,
                method,
                _,
                count,
                sum_ms,
                max_ms,
                sketch,
            ) in await connection.execute(statement):
                tally = tallies[service, method, route]
                tally[0] += count
                tally[1] += sum_ms
                tally[2] = max(tally[2], max_ms)
                tally[3].append(sketch)
        found.append(
            {key: from_many_bytes(t[3]).quantiles(QUANTILES) for key, t in tallies.items()}
        )
    return found


def _baseline_statements(since: datetime, until: datetime) -> list[Any]:
    first_whole, last_whole = hour_ceil(since), hour_floor(until)
    minute = RequestMinute.minute
    in_range = [minute >= since, minute < until]
    statements = []
    if first_whole < last_whole:
        statements.append(
            select(*_columns(RequestHour)).where(
                RequestHour.hour >= first_whole, RequestHour.hour < last_whole
            )
        )
        in_range.append(
            or_(RequestMinute.rolled_up == false(), minute < first_whole, minute >= last_whole)
        )
    statements.append(select(*_columns(RequestMinute)).where(and_(*in_range)))
    return statements


def _columns(table: Any) -> tuple[Any, ...]:
    return (
        table.service,
        table.route,
        table.method,
        table.status_class,
        table.count,
        table.sum_ms,
        table.max_ms,
        table.sketch,
    )


async def current_segments(
    session: AsyncSession, bounds: Sequence[datetime]
) -> list[dict[tuple[str, str, str], list[float | None]]]:
    """The read the analysis does now, down to the same quantiles."""
    return [
        {(e.service, e.method, e.route): a.histogram.quantiles(QUANTILES) for e, a in part.items()}
        for part in await read_segments(session, bounds)
    ]


async def compare_reads(store: Store, answers: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The two reads over each analysis' own windows, timed in turn on one store."""
    found: dict[str, Any] = {}
    for hours in (24, 720):
        answer = answers[f"analysis?hours={hours}"]["answer"]
        bounds = [
            _instant(answer["previous_window"]["start"]),
            _instant(answer["window"]["start"]),
            _instant(answer["window"]["end"]),
        ]
        results: dict[str, Any] = {}
        for name, read in (("current", current_segments), ("baseline", baseline_segments)):

            async def call(read: Any = read, bounds: list[datetime] = bounds) -> Any:
                async with store.sessions() as session:
                    return await read(session, bounds)

            timing, results[name] = await timed(call, max(1, repeats // 2))
            found.setdefault(f"hours={hours}", {})[name] = timing
        for part, (now_part, was_part) in enumerate(
            zip(results["current"], results["baseline"], strict=True)
        ):
            # The app's own requests (this benchmark's) are flushed as it runs: left out.
            for key in (now_part.keys() | was_part.keys()) - set(_own(now_part, was_part)):
                assert now_part.get(key) == was_part.get(key), (
                    f"the reads disagree: hours={hours} part {part} {key} "
                    f"{now_part.get(key)} against {was_part.get(key)}"
                )
        figures = found[f"hours={hours}"]
        figures["speedup"] = round(
            figures["baseline"]["median_ms"] / figures["current"]["median_ms"], 2
        )
    return found


def _own(*parts: dict[tuple[str, str, str], Any]) -> list[tuple[str, str, str]]:
    return [key for part in parts for key in part if key[0] == SELF_SERVICE]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def run_store(url: str, shape: Shape, traffic: Traffic, repeats: int) -> dict[str, Any]:
    """Migrates, loads and times one store of one size."""
    now = datetime.now(UTC)
    settings = Settings(
        database_url=url,
        admin_token=TOKEN,
        monitor_in_process=False,
        alert_dispatch_in_process=False,
        log_level="WARNING",
        # Long enough for the largest sizes: a read slower than the default bound (5 s)
        # would answer 503, and the figure is what this measures.
        database_timeout_seconds=120,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.clock = lambda: now
        started = time.perf_counter()
        counts = await load(app.state.store, traffic, shape, now)
        load_s = time.perf_counter() - started
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            timings = await time_endpoints(client, repeats)
        reads = await compare_reads(app.state.store, timings, repeats)
    errors = {
        f"hours={hours}": round(
            worst_error(answer, exact_quantiles(traffic, shape, now, answer["window"])), 5
        )
        for hours in (24, 720)
        for answer in [timings[f"analysis?hours={hours}"]["answer"]]
    }
    bottlenecks = len(timings["bottlenecks?days=7"]["answer"]["bottlenecks"])
    for timing in timings.values():
        del timing["answer"]
    return {
        **counts,
        "load_s": round(load_s, 1),
        "timings": timings,
        "reads": reads,
        "worst_relative_error": errors,
        "bottlenecks_found": bottlenecks,
    }


async def main(
    requests: int, route_counts: list[int], services: int, backends: list[str], repeats: int
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "requests": requests,
        "services": services,
        "days": DAYS,
        "sizes": [],
    }
    for routes in route_counts:
        shape = Shape(routes, services)
        traffic = synthesize(requests, shape)
        size: dict[str, Any] = {"routes": routes, "endpoints": shape.endpoints, "backends": {}}
        for backend in backends:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as directory:
                    url = f"sqlite+aiosqlite:///{directory}/bench.db"
                    size["backends"][backend] = await run_store(url, shape, traffic, repeats)
            else:
                async with scratch_postgres() as url:
                    size["backends"][backend] = await run_store(url, shape, traffic, repeats)
            print_size(report, size, backend)
        report["sizes"].append(size)
    return report


def print_size(report: dict[str, Any], size: dict[str, Any], backend: str) -> None:
    figures = size["backends"][backend]
    print(
        f"\n{backend}: {report['requests']:,} requests over {report['days']} days, "
        f"{size['routes']} routes x {report['services']} services = {size['endpoints']} "
        f"endpoints; {figures['day_rows']:,} day rows, {figures['hour_rows']:,} hour rows, "
        f"{figures['minute_rows']:,} minute "
        f"rows (loaded in {figures['load_s']} s)"
    )
    print(f"  {'endpoint':<22}{'median ms':>10}{'best ms':>9}{'target':>8}  ok")
    for query, timing in figures["timings"].items():
        ok = "yes" if timing["median_ms"] <= timing["target_ms"] else "NO"
        print(
            f"  {query:<22}{timing['median_ms']:>10.1f}{timing['best_ms']:>9.1f}"
            f"{timing['target_ms']:>8}  {ok}"
        )
    for window, read in figures["reads"].items():
        print(
            f"  read of analysis?{window:<10} now {read['current']['median_ms']:>8.1f} ms, "
            f"before {read['baseline']['median_ms']:>8.1f} ms: {read['speedup']:.1f}x faster"
        )
    errors = ", ".join(f"{k}: {v:.3%}" for k, v in figures["worst_relative_error"].items())
    print(f"  worst p50/p95/p99 error against numpy: {errors}")


def print_growth(report: dict[str, Any]) -> None:
    """Each figure at every size, against the smallest."""
    sizes = report["sizes"]
    if len(sizes) < 2:
        return
    print("\nGrowth with routes (median ms; x = against the smallest size)")
    for backend in sizes[0]["backends"]:
        header = "".join(f"{s['routes']:>12} routes" for s in sizes)
        print(f"  {backend:<30}{header}")
        rows: dict[str, list[float]] = defaultdict(list)
        for size in sizes:
            figures = size["backends"][backend]
            for query, timing in figures["timings"].items():
                rows[query].append(timing["median_ms"])
            for window, read in figures["reads"].items():
                rows[f"read {window} now"].append(read["current"]["median_ms"])
                rows[f"read {window} before"].append(read["baseline"]["median_ms"])
        for name, values in rows.items():
            cells = "".join(f"{v:>9.1f} {v / values[0]:>4.1f}x" for v in values)
            print(f"  {name:<30}{cells}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--routes", default="50,200,1000", help="comma-separated route counts")
    parser.add_argument("--services", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    route_counts = [int(part) for part in arguments.routes.split(",")]
    result = asyncio.run(
        main(
            arguments.requests,
            route_counts,
            arguments.services,
            arguments.backends,
            arguments.repeats,
        )
    )
    print_growth(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
