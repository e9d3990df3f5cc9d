"""Benchmark of the dashboard's pages at the size that makes other tools crawl.

Uptime Kuma's UI is reported taking 10-45 s a page at 700-1,400 monitors. This loads, on
PostgreSQL: 2,000 components with 30 days of hourly health history (plus the running
states, their incidents and the newest checks), 3 services x 50 endpoints with 30 days of
request hours and two days of minutes, and 100,000 issues; then it times, through the app
in process (httpx's ASGI transport, a developer's browser session), the server time of

- the overview ``/``, its live refresh ``/overview/live`` and the fragment of its slow
  figures, the desk's and the success criteria (``/overview/objectives``),
- a component page ``/components/{name}`` over 24 hours and over 30 days,
- a performance page ``/performance?service=…`` (and its insights fragment),
- the issue list ``/issues`` (filtered and paged, as a person pages through it),

each against the target p95 < 300 ms, beside the baseline of the same figures asked of the
JSON API (the calls the page makes, one after the other) with the ratio page / API: what
rendering the page costs on top of the figures. Page weight is the HTML plus every script
and stylesheet the page links, uncompressed, against 300 kB.

The stores are filled in bulk: health hours by ``tests/web/seed.health_hours`` (the
browser tests' seeder, at twelve checks an hour), requests by ``bench/analysis.py``'s
``synthesize`` and ``rows`` (one traffic per service), issues by ``bench/issue_desk.py``'s
``load``.

    .venv/bin/python bench/dashboard.py [--small] [--components 2000] [--days 30]
        [--endpoints 50] [--requests 2000000] [--issues 100000] [--calls 20]

``--small`` is a quick run (200 components, 7 days, 10 endpoints, 5,000 issues). PostgreSQL
comes from WATCHKEEPER_TEST_POSTGRES_URL (default: the local server); the bench makes its
own database and drops it. Figures are printed and written to bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import analysis  # noqa: E402
import issue_desk  # noqa: E402
from scratch import median_and_p95, scratch_postgres  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.core.hours import HOUR, hour_floor  # noqa: E402
from app.db.models import (  # noqa: E402
    ComponentState,
    HealthHour,
    HealthIncident,
    HealthResult,
    HealthSweep,
    User,
)
from app.db.store import Store  # noqa: E402
from app.main import create_app, prepare_store  # noqa: E402
from app.services import accounts  # noqa: E402
from app.vocabulary.accounts import Role, TokenKind  # noqa: E402
from app.vocabulary.health import worst_status  # noqa: E402
from app.web.sessions import SESSION_COOKIE  # noqa: E402
from tests.web.seed import (  # noqa: E402
    COMPONENTS,
    Component,
    bulk,
    check_result,
    fleet,
    health_hours,
)

ADMIN_TOKEN = "wk_bench-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"
RESULTS = ROOT / "bench" / "results" / "dashboard.json"
TARGET_MS = 300.0
WEIGHT_LIMIT = 300_000
CHECKS_PER_HOUR = 12
COMPONENT_CHUNK = 100
RECENT_SWEEPS = 5
# The services bench/analysis.py names: svc0, svc1, svc2.
SERVICES = ("svc0", "svc1", "svc2")
_ASSET = re.compile(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"')


async def load_health(
    store: Store, components: Sequence[Component], now: datetime, days: int
) -> int:
    """Hourly history for every component, its state, incidents and newest sweeps."""
    this_hour = hour_floor(now)
    start = this_hour - days * 24 * HOUR
    rows = 0
    for first in range(0, len(components), COMPONENT_CHUNK):
        chunk = components[first : first + COMPONENT_CHUNK]
        hours, incidents = health_hours(
            chunk, start=start, end=this_hour, checks=CHECKS_PER_HOUR, seed=first
        )
        await bulk(store, HealthHour, hours)
        await bulk(store, HealthIncident, incidents)
        rows += len(hours)
    rng = np.random.default_rng(1)
    sweeps: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for number in range(RECENT_SWEEPS):
        at = now - (RECENT_SWEEPS - number) * timedelta(minutes=1)
        checks = [check_result(c, at, rng) for c in components]
        sweeps.append(
            {
                "id": number + 1,
                "source": "server",
                "started_at": at,
                "duration_ms": 900.0,
                "status": worst_status(r.status for r in checks),
            }
        )
        results.extend(
            {
                "sweep_id": number + 1,
                "component": r.name,
                "kind": r.kind,
                "status": r.status,
                "latency_ms": r.latency_ms,
                "message": r.message,
                "details": r.details,
                "checked_at": r.checked_at,
            }
            for r in checks
        )
    await bulk(store, HealthSweep, sweeps)
    await bulk(store, HealthResult, results)
    last = {r["component"]: r for r in results}
    await bulk(
        store,
        ComponentState,
        [
            {
                "component": c.name,
                "kind": c.kind,
                "status": c.now,
                "since": now - timedelta(hours=1 + index % 300),
                "last_checked_at": last[c.name]["checked_at"],
                "last_latency_ms": last[c.name]["latency_ms"],
                "last_message": last[c.name]["message"],
            }
            for index, c in enumerate(components)
        ],
    )
    return rows


async def load_requests(store: Store, shape: analysis.Shape, requests: int, now: datetime) -> int:
    """A month of every service's traffic, stored as ``bench/analysis.py`` stores it."""
    traffic = analysis.synthesize(requests * shape.services, shape)
    stored = await analysis.load(store, traffic, shape, now)
    return stored["hour_rows"] + stored["minute_rows"]


async def seed(
    url: str, args: argparse.Namespace, now: datetime
) -> tuple[Settings, dict[str, Any]]:
    settings = Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        monitor_in_process=False,
        alert_dispatch_in_process=False,
    )
    store = Store(url)
    await prepare_store(store, settings)
    began = time.perf_counter()
    components = fleet(args.components)
    counts: dict[str, float] = {
        "health_hours": await load_health(store, components, now, args.days)
    }
    shape = analysis.Shape(routes=args.endpoints, services=len(SERVICES))
    counts["request_rows"] = await load_requests(store, shape, args.requests, now)
    await issue_desk.load(store, args.issues, now)
    counts["issues"] = args.issues
    async with store.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
    counts["load_seconds"] = round(time.perf_counter() - began, 1)
    await store.dispose()
    return settings, counts


async def developer_session(store: Store, settings: Settings) -> str:
    """A browser session of a developer (as signing in gives it)."""
    async with store.unit_of_work() as session:
        developer = await session.get(User, 2)  # issue_desk's first developer
        assert developer is not None and developer.role is Role.DEVELOPER
        _, token = await accounts.issue_token(
            session,
            user=developer,
            name="bench",
            kind=TokenKind.BROWSER,
            ttl=timedelta(minutes=settings.session_token_ttl_minutes),
        )
    return token


Rounds = list[list[str]]


def cases(components: int) -> dict[str, tuple[Rounds, Rounds]]:
    """Each page's rounds (one path a round, in turn), and the API calls that answer the
    same figures, all of a round's made one after the other (the baseline)."""
    api = "/api/v1/maintenance"
    name = f"target-{components // 2:04d}" if components > len(COMPONENTS) else "api-gateway"
    service = SERVICES[0]
    overview_api = [
        f"{api}/components?limit=25",
        f"{api}/performance/services",
        *(f"{api}/performance/analysis?hours=1&service={s}" for s in SERVICES),
        f"{api}/alerts?state=firing&limit=10",
    ]
    issue_pages = [f"status=open&status=triaged&offset={20 * page}" for page in range(5)]
    return {
        "overview": ([["/"]], [overview_api]),
        "overview live refresh": ([["/overview/live"]], [overview_api]),
        "overview objectives": (
            [["/overview/objectives"]],
            [[f"{api}/issues/statistics", f"{api}/slo"]],
        ),
        "component 24h": (
            [[f"/components/{name}?range=24h"]],
            [[f"{api}/components/{name}?range=24h"]],
        ),
        "component 30d": (
            [[f"/components/{name}?range=30d"]],
            [[f"{api}/components/{name}?range=30d"]],
        ),
        "performance": (
            [[f"/performance?service={service}"]],
            [[f"{api}/performance/services", f"{api}/performance/analysis?service={service}"]],
        ),
        "performance insights": (
            [[f"/performance/insights?service={service}"]],
            [
                [
                    f"{api}/performance/bottlenecks?service={service}",
                    f"{api}/performance/recommendations?service={service}",
                    f"{api}/performance/trends?period=week&service={service}",
                    f"{api}/performance/trends?period=quarter&service={service}",
                ]
            ],
        ),
        "issue list": (
            [[f"/issues?{query}"] for query in issue_pages],
            [[f"{api}/issues?{query}"] for query in issue_pages],
        ),
    }


@dataclass
class Timing:
    """Milliseconds of each round, the last answer, and the answers that were not 200."""

    samples: list[float]
    last: httpx.Response
    failures: list[str]

    def figures(self) -> dict[str, Any]:
        return {**median_and_p95(self.samples), "failures": self.failures}


async def timed(
    client: httpx.AsyncClient, rounds: Rounds, calls: int, headers: dict[str, str]
) -> Timing:
    """Each of ``calls`` rounds, taken in turn, after one warm-up of each; an answer that
    is not 200 is noted (with its status and the start of its body), not hidden."""
    failures: list[str] = []

    async def get(path: str) -> httpx.Response:
        answer = await client.get(path, headers=headers)
        if answer.status_code != 200:
            failures.append(f"{path}: {answer.status_code} {answer.text[:120]}")
        return answer

    for paths in rounds:
        for path in paths:
            last = await get(path)
    samples = []
    for number in range(calls):
        started = time.perf_counter()
        for path in rounds[number % len(rounds)]:
            last = await get(path)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(samples, last, failures)


async def weight(client: httpx.AsyncClient, page: httpx.Response) -> dict[str, int]:
    """The page's HTML and every script and stylesheet it links, in bytes, uncompressed."""
    assets = 0
    for link in sorted(set(_ASSET.findall(page.text))):
        asset = await client.get(link)
        asset.raise_for_status()
        assets += len(asset.content)
    return {"html": len(page.content), "assets": assets, "total": len(page.content) + assets}


async def measure(settings: Settings, now: datetime, components: int, calls: int) -> dict[str, Any]:
    app = create_app(settings)
    found: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        app.state.clock = lambda: now
        token = await developer_session(app.state.store, settings)
        gc.collect()
        gc.freeze()  # as `watchkeeper serve` does after start-up
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            client.cookies.set(SESSION_COOKIE, token)
            bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for name, (pages, apis) in cases(components).items():
                page, api = (
                    await timed(client, pages, calls, {}),
                    await timed(client, apis, calls, bearer),
                )
                found[name] = {
                    "page": page.figures(),
                    "api": api.figures(),
                    "weight": await weight(client, page.last),
                }
                failed = (
                    f" ({len(page.failures)} failed: {page.failures[0]})" if page.failures else ""
                )
                print(f"  {name}: p95 {found[name]['page']['p95_ms']} ms{failed}", flush=True)
            # Where the overview's time goes: each figure it shows, asked of the API alone.
            slow = cases(components)["overview objectives"][1][0]
            found["overview"]["api_calls"] = {
                path: (await timed(client, [[path]], calls, bearer)).figures()
                for path in [*cases(components)["overview"][1][0], *slow]
            }
        gc.unfreeze()
    return found


def show(report: dict[str, Any]) -> None:
    size = report["size"]
    print(
        f"\nDashboard pages on PostgreSQL: {size['components']:,} components x {size['days']} "
        f"days, {len(SERVICES)} services x {size['endpoints']} endpoints "
        f"({size['requests']:,} requests each), {size['issues']:,} issues; "
        f"{size['calls']} calls each, server time in ms"
    )
    print(
        f"{'page':<24}{'median':>9}{'p95':>9}{'target':>8}  met"
        f"{'API p95':>10}{'page/API':>10}{'weight kB':>11}  < 300"
    )
    for name, r in report["pages"].items():
        met = "yes" if r["page"]["p95_ms"] < TARGET_MS else "NO"
        ratio = r["page"]["p95_ms"] / r["api"]["p95_ms"] if r["api"]["p95_ms"] else float("nan")
        kb = r["weight"]["total"] / 1000
        light = "yes" if r["weight"]["total"] < WEIGHT_LIMIT else "NO"
        if r["page"]["failures"] or r["api"]["failures"]:
            met = "ERR"
        print(
            f"{name:<24}{r['page']['median_ms']:>9.1f}{r['page']['p95_ms']:>9.1f}"
            f"{TARGET_MS:>8.0f}  {met:<3}{r['api']['p95_ms']:>10.1f}{ratio:>10.2f}"
            f"{kb:>11.1f}  {light}"
        )
    print("\nThe overview's figures (and its objectives'), each asked of the API alone (ms):")
    for path, timing in report["pages"]["overview"]["api_calls"].items():
        failed = (
            f"  {len(timing['failures'])} not 200: {timing['failures'][0]}"
            if timing["failures"]
            else ""
        )
        print(f"  {path:<60}{timing['median_ms']:>9.1f}{timing['p95_ms']:>9.1f}{failed}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick run at a tenth the size")
    parser.add_argument("--components", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--endpoints", type=int)
    parser.add_argument("--requests", type=int, help="per service, over the days")
    parser.add_argument("--issues", type=int)
    parser.add_argument("--calls", type=int)
    args = parser.parse_args()
    defaults = (
        {
            "components": 200,
            "days": 7,
            "endpoints": 10,
            "requests": 200_000,
            "issues": 5000,
            "calls": 10,
        }
        if args.small
        else {
            "components": 2000,
            "days": 30,
            "endpoints": 50,
            "requests": 2_000_000,
            "issues": 100_000,
            "calls": 20,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    analysis.DAYS = args.days
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    async with scratch_postgres() as url:
        settings, counts = await seed(url, args, now)
        print(f"loaded: {counts}", flush=True)
        pages = await measure(settings, now, args.components, args.calls)
    report = {
        "size": {k: getattr(args, k) for k in defaults},
        "rows": counts,
        "target_p95_ms": TARGET_MS,
        "weight_limit_bytes": WEIGHT_LIMIT,
        "pages": pages,
    }
    show(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
