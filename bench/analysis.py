"""How fast the performance analysis answers over a month of traffic, and how accurate it is.

Builds 10 million synthetic requests over 30 days across 50 routes (long-tailed durations,
a few failing routes, Zipf-like popularity, a daily rhythm) and stores them the way a
running server leaves them: hour rows for every complete hour, minute rows for the last
two days (marked rolled up, except the current hour's). The sketches are built with numpy
(``encode_groups``) straight from the durations; no request goes through HTTP. Then it
times ``/performance/analysis?hours=24``, ``?hours=720`` and ``/bottlenecks?days=7``
through the app in process (targets on PostgreSQL: 150 ms, 500 ms, 1 s), and compares
every p50/p95/p99 the analysis returns, overall and per endpoint, with numpy's exact
percentiles (``method="lower"``) of the same durations (target: ≤ 1% relative error).

Run from the repository root (PostgreSQL from ``WATCHKEEPER_TEST_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``; a database of its own is
created and dropped)::

    .venv/bin/python bench/analysis.py [--requests 10000000] [--backends sqlite postgresql]

Prints a table and writes ``bench/results/analysis.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import scratch_postgres  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.db.models import RequestHour, RequestMinute  # noqa: E402
from app.db.store import Store  # noqa: E402
from app.main import create_app  # noqa: E402
from app.vocabulary.performance import RequestSource, StatusClass  # noqa: E402
from app.vocabulary.sketch import encode_groups  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "analysis.json"
ROUTES = 50
DAYS = 30
TOKEN = "wk_bench-admin-token-0123456789abcdefghijklmnopqrstuvw"
TARGETS_MS = {"analysis?hours=24": 150, "analysis?hours=720": 500, "bottlenecks?days=7": 1000}
CLASSES = (StatusClass.SUCCESS, StatusClass.CLIENT_ERROR, StatusClass.SERVER_ERROR)
INSERT_CHUNK = 20_000


@dataclass
class Traffic:
    """Every synthetic request: when (seconds before now), which route, class, duration."""

    age_s: np.ndarray
    route: np.ndarray
    klass: np.ndarray
    duration_ms: np.ndarray


def synthesize(requests: int, seed: int = 7) -> Traffic:
    """Long-tailed durations per route, Zipf-like popularity, a daily rhythm."""
    rng = np.random.default_rng(seed)
    popularity = 1 / np.arange(1, ROUTES + 1) ** 0.8
    route = rng.choice(ROUTES, size=requests, p=popularity / popularity.sum()).astype(np.int64)
    # More traffic by day than by night: accept each request by a sine of its hour.
    age_s = rng.uniform(0, DAYS * 86_400, size=requests * 2)
    keep = rng.uniform(size=age_s.size) < 0.6 + 0.4 * np.sin(age_s / 86_400 * 2 * np.pi)
    age_s = age_s[keep][:requests]
    assert age_s.size == requests, "daily rhythm rejected too many samples"
    median_ms = np.geomspace(3, 900, ROUTES)[rng.permutation(ROUTES)]
    sigma = rng.uniform(0.3, 1.1, ROUTES)
    duration = np.exp(np.log(median_ms[route]) + sigma[route] * rng.standard_normal(requests))
    error_rate = np.where(np.arange(ROUTES) % 10 == 3, 0.03, 0.001)
    draw = rng.uniform(size=requests)
    klass = np.where(draw < error_rate[route], 2, np.where(draw < 0.04, 1, 0)).astype(np.int64)
    return Traffic(age_s, route, klass, duration)


def rows(
    traffic: Traffic, now: datetime, *, step_s: int, since_s: float | None
) -> list[dict[str, Any]]:
    """One row per (time step, route, class) with requests, built with numpy."""
    mask = np.ones(traffic.age_s.size, bool) if since_s is None else traffic.age_s < since_s
    moments = now.timestamp() - traffic.age_s[mask]
    slot = (moments // step_s).astype(np.int64)
    first = int(slot.min())
    key = ((slot - first) * ROUTES + traffic.route[mask]) * len(CLASSES) + traffic.klass[mask]
    keys, group = np.unique(key, return_inverse=True)
    blobs = encode_groups(traffic.duration_ms[mask], group.astype(np.int64), keys.size)
    counts = np.bincount(group, minlength=keys.size)
    sums = np.bincount(group, weights=traffic.duration_ms[mask], minlength=keys.size)
    maxima = np.full(keys.size, -np.inf)
    np.maximum.at(maxima, group, traffic.duration_ms[mask])
    found = []
    for n, k in enumerate(keys.tolist()):
        step, rest = divmod(k, ROUTES * len(CLASSES))
        route, klass = divmod(rest, len(CLASSES))
        found.append(
            {
                "at": datetime.fromtimestamp((step + first) * step_s, UTC),
                "service": "watchkeeper",
                "source": RequestSource.SELF,
                "route": f"/api/v1/resource{route}/{{item_id}}",
                "method": "GET" if route % 4 else "POST",
                "status_class": CLASSES[klass],
                "count": int(counts[n]),
                "sum_ms": float(sums[n]),
                "max_ms": float(maxima[n]),
                "sketch": blobs[n],
                "exemplars": [],
            }
        )
    return found


async def load(store: Store, traffic: Traffic, now: datetime) -> dict[str, int]:
    """Stores the traffic as a server that ran for 30 days would have left it."""
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [
        {**{k: v for k, v in row.items() if k != "at"}, "hour": row["at"]}
        for row in rows(traffic, now, step_s=3600, since_s=None)
        if row["at"] < current_hour
    ]
    minutes = [
        {
            **{k: v for k, v in row.items() if k != "at"},
            "minute": row["at"],
            "process": "bench",
            "rolled_up": row["at"] < current_hour,
        }
        for row in rows(traffic, now, step_s=60, since_s=2 * 86_400)
    ]
    for table, batch in ((RequestHour, hours), (RequestMinute, minutes)):
        for start in range(0, len(batch), INSERT_CHUNK):
            async with store.unit_of_work() as session:
                await session.execute(insert(table), batch[start : start + INSERT_CHUNK])
    if store.dialect == "postgresql":
        async with store.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
    return {"hour_rows": len(hours), "minute_rows": len(minutes)}


def exact_quantiles(traffic: Traffic, now: datetime, hours: int) -> dict[str, list[float]]:
    """numpy's percentiles of every window's durations: overall and per endpoint."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    inside = traffic.age_s <= (now - start).total_seconds()
    found = {"overall": _percentiles(traffic.duration_ms[inside])}
    for route in range(ROUTES):
        durations = traffic.duration_ms[inside & (traffic.route == route)]
        if durations.size:
            found[f"/api/v1/resource{route}/{{item_id}}"] = _percentiles(durations)
    return found


def _percentiles(durations: np.ndarray) -> list[float]:
    return [float(np.percentile(durations, q, method="lower")) for q in (50, 95, 99)]


def worst_error(answer: dict[str, Any], exact: dict[str, list[float]]) -> float:
    """The largest relative error of any p50/p95/p99 in the answer."""
    measured = {"overall": answer["overall"]}
    measured.update({e["route"]: e for e in answer["endpoints"]})
    worst = 0.0
    for name, truth in exact.items():
        figures = measured[name]
        for key, value in zip(("median_ms", "p95_ms", "p99_ms"), truth, strict=True):
            worst = max(worst, abs(figures[key] - value) / value)
    return worst


async def time_endpoints(client: httpx.AsyncClient, repeats: int) -> dict[str, dict[str, Any]]:
    """Median and best of ``repeats`` timed calls per endpoint, after one warm-up."""
    found: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for query in TARGETS_MS:
        path = f"/api/v1/maintenance/performance/{query}"
        answer = (await client.get(path, headers=headers)).json()
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = await client.get(path, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        found[query] = {
            "median_ms": round(statistics.median(samples), 1),
            "best_ms": round(min(samples), 1),
            "target_ms": TARGETS_MS[query],
            "answer": answer,
        }
    return found


async def run_backend(url: str, traffic: Traffic, repeats: int) -> dict[str, Any]:
    """Migrates, loads and times one store."""
    now = datetime.now(UTC)
    settings = Settings(
        database_url=url,
        admin_token=TOKEN,
        monitor_in_process=False,
        alert_dispatch_in_process=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.clock = lambda: now
        started = time.perf_counter()
        counts = await load(app.state.store, traffic, now)
        load_s = time.perf_counter() - started
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            timings = await time_endpoints(client, repeats)
    errors = {
        hours: worst_error(
            timings[f"analysis?hours={hours}"]["answer"], exact_quantiles(traffic, now, hours)
        )
        for hours in (24, 720)
    }
    bottlenecks = timings["bottlenecks?days=7"]["answer"]["bottlenecks"]
    for timing in timings.values():
        del timing["answer"]
    return {
        **counts,
        "load_s": round(load_s, 1),
        "timings": timings,
        "worst_relative_error": {f"hours={h}": round(e, 5) for h, e in errors.items()},
        "bottlenecks_found": len(bottlenecks),
    }


async def main(requests: int, backends: list[str], repeats: int) -> dict[str, Any]:
    started = time.perf_counter()
    traffic = synthesize(requests)
    report: dict[str, Any] = {
        "requests": requests,
        "routes": ROUTES,
        "days": DAYS,
        "synthesis_s": round(time.perf_counter() - started, 1),
        "backends": {},
    }
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite+aiosqlite:///{directory}/bench.db"
                report["backends"][backend] = await run_backend(url, traffic, repeats)
            continue
        async with scratch_postgres() as url:
            report["backends"][backend] = await run_backend(url, traffic, repeats)
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"{report['requests']:,} requests, {report['routes']} routes, {report['days']} days")
    print(f"{'backend':<11}{'endpoint':<22}{'median ms':>10}{'best ms':>9}{'target':>8}  ok")
    for backend, figures in report["backends"].items():
        for query, timing in figures["timings"].items():
            ok = "yes" if timing["median_ms"] <= timing["target_ms"] else "NO"
            print(
                f"{backend:<11}{query:<22}{timing['median_ms']:>10.1f}{timing['best_ms']:>9.1f}"
                f"{timing['target_ms']:>8}  {ok}"
            )
        errors = ", ".join(f"{k}: {v:.3%}" for k, v in figures["worst_relative_error"].items())
        print(
            f"{backend:<11}rows: {figures['hour_rows']:,} hours, {figures['minute_rows']:,} "
            f"minutes (loaded in {figures['load_s']} s); worst p50/p95/p99 error {errors}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments.requests, arguments.backends, arguments.repeats))
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
