"""Benchmark of the issue desk at 100,000 issues, on SQLite and on PostgreSQL.

Loads 100,000 issues (with ~200,000 comments and ~400,000 history rows) straight into a
fresh store, then times, through the HTTP API in process, 50 calls each of
``GET /issues/statistics``, a filtered and paged ``GET /issues`` and ``GET /issues/{id}``.
Prints median and p95 and writes bench/results/issue_desk.json.

    .venv/bin/python bench/issue_desk.py [--issues 100000] [--calls 50] [--stores sqlite,postgresql]

PostgreSQL comes from WATCHKEEPER_TEST_POSTGRES_URL (default: the machine's local server);
the benchmark creates its own database there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from scratch import median_and_p95, scratch_postgres
from sqlalchemy import insert, text

from app.core.config import Settings
from app.db.models import Issue, IssueComment, IssueEvent, IssueLabel, User
from app.db.store import Store
from app.main import create_app, prepare_store
from app.vocabulary.accounts import Role
from app.vocabulary.issues import IssueStatus, IssueType, Priority, Resolution

ADMIN_TOKEN = "wk_bench-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"
RESULTS = Path(__file__).parent / "results"
TARGETS_MS = {"statistics": 300.0, "list": 30.0, "detail": 30.0}
STATUS_MIX = {
    IssueStatus.OPEN: 15,
    IssueStatus.TRIAGED: 5,
    IssueStatus.ASSIGNED: 5,
    IssueStatus.IN_PROGRESS: 10,
    IssueStatus.TESTING: 5,
    IssueStatus.RESOLVED: 10,
    IssueStatus.VERIFIED: 10,
    IssueStatus.CLOSED: 40,
}
LABELS = ["ui", "api", "export", "login", "billing", "mobile", "perf", "docs", "db", "infra"]
ORDER = list(IssueStatus)
SYMPTOMS = ["fails", "slow", "broken", "request"]
LIST_QUERY = "status=open&status=triaged&priority=high&sort=-updated&limit=20"


def issue_rows(
    count: int, users: list[int], devs: list[int], now: datetime, rng: random.Random
) -> Iterator[tuple[dict[str, Any], list[str], int]]:
    """Plausible issues: (row, labels, number of comments), stage times consistent."""
    statuses = list(STATUS_MIX)
    weights = list(STATUS_MIX.values())
    for number in range(1, count + 1):
        status = rng.choices(statuses, weights)[0]
        created = now - timedelta(seconds=rng.uniform(0, 180 * 86400))
        step = ORDER.index(status)
        hours = iter(sorted(rng.expovariate(1 / 8) for _ in range(6)))
        stage = {
            s: created + timedelta(hours=next(hours)) for s in ORDER[1:7] if ORDER.index(s) <= step
        }
        resolved = stage.get(IssueStatus.RESOLVED)
        row: dict[str, Any] = {
            "id": number,
            "title": f"Issue {number}: {rng.choice(LABELS)} {rng.choice(SYMPTOMS)}",
            "description": "Steps to reproduce: open the page, click, wait. " * rng.randint(1, 6),
            "issue_type": rng.choice(list(IssueType)),
            "priority": rng.choice(list(Priority)),
            "status": status,
            "resolution": Resolution.FIXED if resolved else None,
            "reporter_id": rng.choice(users),
            "assignee_id": rng.choice(devs) if step >= ORDER.index(IssueStatus.ASSIGNED) else None,
            "created_at": created,
            "updated_at": max([created, *stage.values()]),
            "triaged_at": stage.get(IssueStatus.TRIAGED),
            "assigned_at": stage.get(IssueStatus.ASSIGNED),
            "first_response_at": stage.get(IssueStatus.TRIAGED),
            "resolved_at": resolved,
            "verified_at": stage.get(IssueStatus.VERIFIED),
            "closed_at": created + timedelta(hours=60) if status is IssueStatus.CLOSED else None,
            "sla_due_at": created + timedelta(hours=48),
            "paused_seconds": 0.0,
            "triage_seconds": _seconds(created, stage.get(IssueStatus.TRIAGED)),
            "first_response_seconds": _seconds(created, stage.get(IssueStatus.TRIAGED)),
            "resolution_seconds": _seconds(created, resolved),
            "resolved_within_target": (resolved - created <= timedelta(hours=48))
            if resolved
            else None,
            "reopen_count": 1 if rng.random() < 0.05 else 0,
            "verification_rejections": 0,
            "verification_count": 1 if status in (IssueStatus.VERIFIED, IssueStatus.CLOSED) else 0,
        }
        labels = rng.sample(LABELS, rng.choice([0, 0, 1, 2]))
        yield row, labels, rng.randint(0, 4)


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if end else None


async def load(store: Store, count: int, now: datetime) -> None:
    """Fills the store with users and ``count`` issues, comments and history."""
    rng = random.Random(42)
    async with store.unit_of_work() as session:
        people = [
            {
                "id": i,
                "username": f"person{i}",
                "role": Role.USER if i > 10 else Role.DEVELOPER,
                "created_at": now - timedelta(days=400),
                "is_active": True,
            }
            for i in range(2, 62)
        ]
        await session.execute(insert(User), people)
    users, devs = list(range(11, 62)), list(range(2, 11))
    batch: dict[str, list[dict[str, Any]]] = {
        "issues": [],
        "labels": [],
        "comments": [],
        "events": [],
    }

    async def flush() -> None:
        async with store.unit_of_work() as session:
            for model, key in (
                (Issue, "issues"),
                (IssueLabel, "labels"),
                (IssueComment, "comments"),
                (IssueEvent, "events"),
            ):
                if batch[key]:
                    await session.execute(insert(model), batch[key])
                    batch[key].clear()

    for row, labels, comments in issue_rows(count, users, devs, now, rng):
        batch["issues"].append(row)
        batch["labels"].extend({"issue_id": row["id"], "name": name} for name in labels)
        for c in range(comments):
            batch["comments"].append(
                {
                    "issue_id": row["id"],
                    "author_id": rng.choice([*devs, row["reporter_id"]]),
                    "body": f"Comment {c} on issue {row['id']}",
                    "internal": rng.random() < 0.2,
                    "created_at": row["created_at"] + timedelta(hours=c + 1),
                }
            )
        step = ORDER.index(row["status"])
        for s in range(step + 1):
            batch["events"].append(
                {
                    "issue_id": row["id"],
                    "actor_id": row["reporter_id"] if s == 0 else devs[0],
                    "at": row["created_at"] + timedelta(hours=s),
                    "field": "status",
                    "old_value": ORDER[s - 1].value if s else None,
                    "new_value": ORDER[s].value,
                }
            )
        if len(batch["issues"]) >= 5000:
            await flush()
    await flush()
    if store.dialect == "postgresql":
        async with store.engine.connect() as connection:
            await connection.execute(
                text("SELECT setval('issues_id_seq', (SELECT max(id) FROM issues))")
            )
            await connection.execute(
                text("SELECT setval('users_id_seq', (SELECT max(id) FROM users))")
            )
            await connection.commit()
        async with store.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))
    else:
        async with store.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))


async def timed(
    client: httpx.AsyncClient, paths: list[str], headers: dict[str, str]
) -> list[float]:
    """Milliseconds of each call, after a short warm-up."""
    for path in paths[:3]:
        (await client.get(path, headers=headers)).raise_for_status()
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


async def run_store(name: str, url: str, count: int, calls: int) -> dict[str, Any]:
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN)
    store = Store(url)
    await prepare_store(store, settings)  # migrations and the admin the calls act as
    now = datetime.now(UTC)
    started = time.perf_counter()
    await load(store, count, now)
    load_seconds = time.perf_counter() - started
    await store.dispose()
    app = create_app(settings)
    rng = random.Random(7)
    base = "/api/v1/maintenance/issues"
    paths = {
        "statistics": [f"{base}/statistics"] * calls,
        "list": [f"{base}?{LIST_QUERY}&offset={20 * (i % 5)}" for i in range(calls)],
        "detail": [f"{base}/{rng.randint(1, count)}" for _ in range(calls)],
    }
    results: dict[str, Any] = {
        "store": name,
        "issues": count,
        "load_seconds": round(load_seconds, 1),
    }
    async with app.router.lifespan_context(app):
        # As `watchkeeper serve` does after start-up: long-lived objects out of full GCs.
        gc.collect()
        gc.freeze()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for key, batch in paths.items():
                results[key] = median_and_p95(await timed(client, batch, headers))
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    report = []
    for name in args.stores.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite+aiosqlite:///{folder}/bench.db"
                report.append(await run_store(name, url, args.issues, args.calls))
        else:
            async with scratch_postgres() as url:
                report.append(await run_store(name, url, args.issues, args.calls))
    print(f"\nIssue desk with {args.issues:,} issues, {args.calls} calls each (ms):")
    print(f"{'store':<11}{'endpoint':<12}{'median':>9}{'p95':>9}{'target p95':>12}  met")
    for result in report:
        for key, target in TARGETS_MS.items():
            figures = result[key]
            met = figures["p95_ms"] < target
            print(
                f"{result['store']:<11}{key:<12}{figures['median_ms']:>9.1f}{figures['p95_ms']:>9.1f}"
                f"{target:>12.0f}  {'yes' if met else 'NO'}"
            )
        print(f"{result['store']:<11}(loaded in {result['load_seconds']} s)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "issue_desk.json"
    out.write_text(json.dumps({"targets_ms": TARGETS_MS, "results": report}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
