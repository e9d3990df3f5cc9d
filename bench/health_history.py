"""Benchmark: ``GET /health?hours=N`` over weeks of history, and the store's bytes per
target per day before and after rollup, on SQLite and on PostgreSQL.

Part 2 of issue 4's benchmark (part 1, the sweeps themselves, is ``bench/health_sweep.py``).

1. History: 20 targets (14 HTTP, 3 Redis, 3 SQL) plus the host and the store, which the
   monitor always checks, swept once a minute for 30 days: 43,200 sweeps and 950,400 raw
   results with the ``details`` the real checks write (taken from one real sweep). Each
   component has outages and slow spells at random (``--days`` 60 by default: the 720 h
   window and the 720 h it is compared with are both full). The hourly rollups, incidents and
   running states are worked out by ``Accountant``, which applies the ledger's own rules in
   memory so that a month loads in seconds; before loading, the first three hours are also
   written through the real ``HealthLedger`` into a scratch store and must come out
   identical (``verify``), so the bulk rows are the rows the ledger writes. Complete days
   are then rolled up into day rows, as the monitor's housekeeping does.
2. Time: ``GET /api/v1/maintenance/health?hours=N`` for N = 24, 168 and 720 through the app
   in process (httpx's ASGI transport), the very first call on its own, then 20 calls each
   after 3 warm-ups; the monitor's clock is frozen at the end of the history. Nothing is
   cached: every call reads the latest stored sweep and works the trend out of the store
   (the sweep is a minute old, as between two monitor runs). Median and p95 of 720 h against
   the 100 ms target, how the cost grows with N, and 20 more 720 h calls with
   ``gc.freeze()`` after start-up (a full collection walks every object the app imported).
   Beside them, the live sweep of these targets that ``/health`` paid on every stale cache
   before issue 15 (its targets point at a closed port, so it is the least it could cost).
3. Bytes: each health table's size measured in the database (``pg_total_relation_size``;
   SQLite's ``dbstat`` after ``VACUUM``), per component per day: raw results plus rollups
   (what the store holds within the raw retention) against rollups alone (what is left
   once the raw rows age out).

Run (PostgreSQL from WATCHKEEPER_TEST_POSTGRES_URL, default the local server; the bench
creates its own database there and drops it; SQLite goes to a temporary file):

    .venv/bin/python bench/health_history.py [--days 60] [--targets 20] [--calls 20]
        [--stores sqlite,postgresql]

Figures are printed and written to bench/results/health_history.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import JsonValue
from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import median_and_p95, scratch_postgres

from app.core.config import Settings
from app.core.hours import HOUR, hour_floor, split_by_hour
from app.db.models import (
    ComponentState,
    HealthDay,
    HealthHour,
    HealthIncident,
    HealthResult,
    HealthSweep,
)
from app.db.store import Store
from app.main import create_app, prepare_store
from app.schemas.health import Sweep, SystemSummary
from app.services.health import days
from app.services.health.history import HealthLedger, Observation, observations
from app.vocabulary.health import CheckResult, ComponentKind, ComponentStatus, worst_status
from app.vocabulary.sketch import QuantileSketch

ADMIN_TOKEN = "wk_bench-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS = 100.0
WINDOWS_HOURS = (24, 168, 720)
HEALTH = "/api/v1/maintenance/health"
INTERVAL = timedelta(minutes=1)
MAX_GAP = 2 * INTERVAL  # as SystemMonitor sets it for a 60 s interval
VERIFY_SWEEPS = 180
BATCH_SWEEPS = 500
HEALTH_TABLES = (HealthSweep, HealthResult, HealthHour, HealthDay, HealthIncident, ComponentState)
ROLLUP_TABLES = (HealthHour, HealthDay, HealthIncident, ComponentState)
UNUSED_PORT = 9  # discard: nothing listens, so live checks fail fast

# What one real sweep's checks wrote in ``details``, per kind (see bench output of the
# checks on this machine); URLs are filled in per target.
DETAILS: dict[str, dict[str, Any]] = {
    "system": {
        "cpu_percent": 12.0,
        "cpu_count": 2,
        "memory_percent": 3.8,
        "memory_used_bytes": 956137472,
        "memory_total_bytes": 25276510208,
        "swap_percent": 0.0,
        "swap_used_bytes": 0,
        "swap_total_bytes": 0,
        "disks": [
            {
                "mountpoint": "/",
                "percent": 22.9,
                "used_bytes": 24933044224,
                "total_bytes": 270553174016,
            }
        ],
        "load_average": [0.54, 0.77, 0.84],
        "process_count": 90,
        "uptime_s": 7300.0,
        "load_per_cpu": 0.27,
        "disk_percent": 22.9,
    },
    "database": {
        "connections": 1,
        "max_connections": 100,
        "reserved_connections": 3,
        "database_bytes": 7708007,
        "longest_transaction_s": 0.0,
        "server_version": "15.20 (Debian 15.20-0+deb12u1)",
        "connections_percent": 1.03,
        "dialect": "postgresql",
    },
    "redis": {
        "connect_ms": 1.1,
        "redis_version": "7.0.15",
        "role": "master",
        "uptime_in_seconds": 7266,
        "connected_clients": 1,
        "blocked_clients": 0,
        "maxclients": 10000,
        "used_memory": 1015976,
        "maxmemory": 0,
        "maxmemory_policy": "noeviction",
        "evicted_keys": 0,
        "rejected_connections": 0,
        "keyspace_hits": 0,
        "keyspace_misses": 0,
        "hit_ratio": None,
        "clients_percent": 0.01,
    },
    "http": {
        "method": "GET",
        "status_code": 200,
        "tls": {
            "verified": True,
            "days_left": 61.2,
            "not_after": "Jan 27 12:00:00 2027 GMT",
            "version": "TLSv1.3",
        },
    },
}
# Median latency (ms) of a healthy answer, per kind.
LATENCY_MS = {"system": 250.0, "database": 1.5, "redis": 0.6, "http": 120.0}


@dataclass(frozen=True)
class Component:
    name: str
    kind: ComponentKind
    url: str | None
    outages_per_day: float  # unhealthy spells of 1-30 min
    slow_spells_per_day: float  # degraded spells of 1-60 min


def fleet(targets: int) -> list[Component]:
    """The host, the store and ``targets`` dependencies: 70% HTTP, the rest Redis and SQL."""
    found = [
        Component("system", ComponentKind.SYSTEM, None, 0.0, 0.2),
        Component("store", ComponentKind.DATABASE, "sqlite+aiosqlite:///var/wk.db", 0.02, 0.0),
    ]
    for number in range(1, targets + 1):
        share = number / targets
        if share <= 0.7:
            kind, url = ComponentKind.HTTP, f"https://api{number}.example.com/health"
        elif share <= 0.85:
            kind, url = ComponentKind.REDIS, f"redis://cache{number}.internal:6379/0"
        else:
            kind, url = ComponentKind.DATABASE, f"postgresql+asyncpg://app@db{number}/app"
        found.append(Component(f"target{number:02d}", kind, url, 0.3, 0.5))
    return found


def live_targets(components: Sequence[Component]) -> list[dict[str, JsonValue]]:
    """The same names as settings targets, pointed at a port where nothing listens."""
    targets: list[dict[str, JsonValue]] = []
    for c in components:
        if c.kind == ComponentKind.HTTP:
            targets.append(
                {"name": c.name, "kind": c.kind, "url": f"http://127.0.0.1:{UNUSED_PORT}/"}
            )
        elif c.kind == ComponentKind.REDIS:
            url = f"redis://127.0.0.1:{UNUSED_PORT}/0"
            targets.append({"name": c.name, "kind": c.kind, "url": url})
        elif c.kind == ComponentKind.DATABASE and c.name != "store":
            url = f"postgresql+asyncpg://bench@127.0.0.1:{UNUSED_PORT}/x"
            targets.append({"name": c.name, "kind": c.kind, "url": url, "timeout_s": 2})
    return targets


class Weather:
    """Each component's status minute by minute: healthy, with random outages and slowness."""

    def __init__(self, components: Sequence[Component], rng: random.Random) -> None:
        self.components = components
        self.rng = rng
        self.until: dict[str, tuple[int, ComponentStatus]] = {}

    def status(self, component: Component, minute: int) -> ComponentStatus:
        ends, status = self.until.get(component.name, (-1, ComponentStatus.HEALTHY))
        if minute < ends:
            return status
        roll = self.rng.random() * 1440
        if roll < component.outages_per_day:
            self.until[component.name] = (
                minute + self.rng.randint(1, 30),
                ComponentStatus.UNHEALTHY,
            )
            return ComponentStatus.UNHEALTHY
        if roll < component.outages_per_day + component.slow_spells_per_day:
            self.until[component.name] = (
                minute + self.rng.randint(1, 60),
                ComponentStatus.DEGRADED,
            )
            return ComponentStatus.DEGRADED
        return ComponentStatus.HEALTHY


def history(
    components: Sequence[Component], start: datetime, minutes: int, seed: int = 42
) -> Iterator[Sweep]:
    """One sweep a minute from ``start``, as SystemMonitor would have collected them."""
    rng = random.Random(seed)
    weather = Weather(components, rng)
    system = SystemSummary(
        cpu_percent=12.0,
        memory_percent=3.8,
        swap_percent=0.0,
        disk_percent=22.9,
        load_average=[0.54, 0.77, 0.84],
        process_count=90,
        uptime_s=7300.0,
    )
    for minute in range(minutes):
        at = start + minute * INTERVAL
        results = []
        for c in components:
            status = weather.status(c, minute)
            details = dict(DETAILS[c.kind.value])
            if c.url is not None:
                details = {"url": c.url, **details}
            latency: float | None = round(rng.lognormvariate(0, 0.4) * LATENCY_MS[c.kind], 2)
            if status is ComponentStatus.UNHEALTHY:
                latency, message = None, "ConnectError: All connection attempts failed"
                details = {"url": c.url, "error": "ConnectError"}
            elif status is ComponentStatus.DEGRADED:
                assert latency is not None
                latency *= 8
                message = f"slow: {latency:.0f} ms > {LATENCY_MS[c.kind] * 4:g} ms; 200 OK"
            else:
                message = f"{c.kind.value} answered in {latency:.1f} ms"
            results.append(
                CheckResult(
                    name=c.name,
                    kind=c.kind,
                    status=status,
                    latency_ms=latency,
                    message=message,
                    details=details,
                    checked_at=at,
                )
            )
        yield Sweep(
            status=worst_status(r.status for r in results),
            checked_at=at,
            duration_ms=260.0,
            components=results,
            system=system,
        )


_SECONDS = {
    ComponentStatus.HEALTHY: "healthy_s",
    ComponentStatus.DEGRADED: "degraded_s",
    ComponentStatus.UNHEALTHY: "unhealthy_s",
    ComponentStatus.UNKNOWN: "unknown_s",
}


@dataclass
class _Hour:
    row: dict[str, Any]
    sketch: QuantileSketch = field(default_factory=QuantileSketch)


class Accountant:
    """``HealthLedger.observe`` applied in memory: the same hourly rows, incidents and states."""

    def __init__(self, max_gap: timedelta) -> None:
        self.max_gap = max_gap
        self.hours: dict[tuple[str, datetime], _Hour] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.incidents: list[dict[str, Any]] = []
        self._open: dict[str, dict[str, Any]] = {}

    def record(self, sweep: Sweep) -> None:
        for seen in observations(sweep):
            self.observe(seen)

    def observe(self, seen: Observation) -> None:
        state = self.states.get(seen.component)
        if state is not None and seen.at < state["last_checked_at"]:
            return
        hour = self._hour(seen.component, seen.kind, hour_floor(seen.at))
        hour.row["checks"] += 1
        hour.row["failures"] += seen.status is ComponentStatus.UNHEALTHY
        if seen.latency_ms is not None:
            hour.row["latency_sum_ms"] += seen.latency_ms
            hour.row["latency_count"] += 1
            hour.sketch.add(seen.latency_ms)
        if state is None:
            self.states[seen.component] = {
                "component": seen.component,
                "kind": seen.kind,
                "status": seen.status,
                "since": seen.at,
                "last_checked_at": seen.at,
                "last_latency_ms": seen.latency_ms,
                "last_message": seen.message,
            }
            if seen.status is ComponentStatus.UNHEALTHY:
                self._open_incident(seen)
            return
        end = min(seen.at, state["last_checked_at"] + self.max_gap)
        for hour_start, seconds in split_by_hour(state["last_checked_at"], end):
            self._hour(seen.component, state["kind"], hour_start).row[
                _SECONDS[state["status"]]
            ] += seconds
        if seen.status is not state["status"]:
            hour.row["status_changes"] += 1
            if seen.status is ComponentStatus.UNHEALTHY:
                self._open_incident(seen)
            elif state["status"] is ComponentStatus.UNHEALTHY:
                incident = self._open.pop(seen.component, None)
                if incident is not None:
                    incident["ended_at"] = seen.at
            state["status"], state["since"] = seen.status, seen.at
        state["kind"] = seen.kind
        state["last_checked_at"] = seen.at
        state["last_latency_ms"] = seen.latency_ms
        state["last_message"] = seen.message

    def _hour(self, component: str, kind: str, start: datetime) -> _Hour:
        key = (component, start)
        if key not in self.hours:
            self.hours[key] = _Hour(
                {
                    "component": component,
                    "kind": kind,
                    "hour": start,
                    "healthy_s": 0.0,
                    "degraded_s": 0.0,
                    "unhealthy_s": 0.0,
                    "unknown_s": 0.0,
                    "checks": 0,
                    "failures": 0,
                    "status_changes": 0,
                    "latency_sum_ms": 0.0,
                    "latency_count": 0,
                }
            )
        return self.hours[key]

    def _open_incident(self, seen: Observation) -> None:
        incident = {
            "component": seen.component,
            "kind": seen.kind,
            "started_at": seen.at,
            "ended_at": None,
            "message": seen.message,
        }
        self.incidents.append(incident)
        self._open[seen.component] = incident

    def hour_rows(self) -> list[dict[str, Any]]:
        return [
            {**h.row, "latency_sketch": h.sketch.to_bytes() if h.sketch.count else b""}
            for h in self.hours.values()
        ]


def sweep_row(sweep: Sweep, sweep_id: int) -> dict[str, Any]:
    """The ``health_sweeps`` row ``HealthLedger.record`` writes for a sweep."""
    system = sweep.system
    return {
        "id": sweep_id,
        "slot": int(sweep.checked_at.timestamp() // INTERVAL.total_seconds()),
        "source": "server",
        "started_at": sweep.checked_at,
        "duration_ms": sweep.duration_ms,
        "status": sweep.status,
        "cpu_percent": system.cpu_percent if system else None,
        "memory_percent": system.memory_percent if system else None,
        "disk_percent": system.disk_percent if system else None,
        "load_1m": system.load_average[0] if system else None,
    }


def result_rows(sweep: Sweep, sweep_id: int) -> list[dict[str, Any]]:
    """The ``health_results`` rows ``HealthLedger.record`` writes for a sweep."""
    return [
        {
            "sweep_id": sweep_id,
            "component": r.name,
            "kind": r.kind,
            "status": r.status,
            "latency_ms": r.latency_ms,
            "message": r.message,
            "details": r.details,
            "checked_at": r.checked_at,
        }
        for r in sweep.components
    ]


def sketch_figures(blob: bytes) -> tuple[Any, ...]:
    if not blob:
        return ()
    sketch = QuantileSketch.from_bytes(blob)
    return (sketch.count, round(sketch.sum, 6), sketch.min, sketch.max, dict(sketch.bins))


async def verify(components: Sequence[Component], start: datetime) -> None:
    """The first hours through the real ledger and through ``Accountant`` must agree."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/verify.db"
        store = Store(url)
        await prepare_store(store, Settings(database_url=url, admin_token=ADMIN_TOKEN))
        accountant = Accountant(MAX_GAP)
        for sweep in history(components, start, VERIFY_SWEEPS):
            accountant.record(sweep)
            async with store.unit_of_work() as session:
                await HealthLedger(session, max_gap=MAX_GAP).record(
                    sweep, source="server", sweep_row=None
                )
        columns = list(accountant.hour_rows()[0])
        async with store.sessions() as session:
            ledger_hours = {
                (h.component, h.hour): {column: getattr(h, column) for column in columns}
                for h in await session.scalars(select(HealthHour))
            }
            ledger_incidents = sorted(
                (i.component, i.started_at, i.ended_at)
                for i in await session.scalars(select(HealthIncident))
            )
            ledger_states = {
                s.component: (s.status, s.since, s.last_checked_at)
                for s in await session.scalars(select(ComponentState))
            }
        await store.dispose()
    ours = {(h["component"], h["hour"]): h for h in accountant.hour_rows()}
    assert ours.keys() == ledger_hours.keys(), "hourly rows differ"
    for key, row in ours.items():
        for column, value in row.items():
            theirs = ledger_hours[key][column]
            if column == "latency_sketch":  # the same bins, perhaps serialised in another order
                value, theirs = (sketch_figures(blob) for blob in (value, theirs))
            same = abs(value - theirs) < 1e-6 if isinstance(value, float) else value == theirs
            assert same, f"{key} {column}: bench {value!r} != ledger {theirs!r}"
    assert ledger_incidents == sorted(
        (i["component"], i["started_at"], i["ended_at"]) for i in accountant.incidents
    )
    assert ledger_states == {
        name: (s["status"], s["since"], s["last_checked_at"])
        for name, s in accountant.states.items()
    }


async def bulk(store: Store, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        async with store.unit_of_work() as session:
            await session.execute(insert(model), rows)


async def load(
    store: Store, components: Sequence[Component], start: datetime, minutes: int
) -> dict[str, int]:
    """Writes ``minutes`` sweeps of raw results, then their rollups, incidents and states."""
    accountant = Accountant(MAX_GAP)
    sweeps: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    counts = {"sweeps": 0, "results": 0}
    for number, sweep in enumerate(history(components, start, minutes), start=1):
        accountant.record(sweep)
        sweeps.append(sweep_row(sweep, number))
        results.extend(result_rows(sweep, number))
        if len(sweeps) >= BATCH_SWEEPS:
            counts["sweeps"] += len(sweeps)
            counts["results"] += len(results)
            await bulk(store, HealthSweep, sweeps)
            await bulk(store, HealthResult, results)
            sweeps, results = [], []
    counts["sweeps"] += len(sweeps)
    counts["results"] += len(results)
    await bulk(store, HealthSweep, sweeps)
    await bulk(store, HealthResult, results)
    hours = accountant.hour_rows()
    for first in range(0, len(hours), 2000):
        await bulk(store, HealthHour, hours[first : first + 2000])
    await bulk(store, HealthIncident, accountant.incidents)
    await bulk(store, ComponentState, list(accountant.states.values()))
    now = start + minutes * INTERVAL
    rolled = 0
    while True:  # as the monitor's housekeeping rolls complete days up
        async with store.unit_of_work() as session:
            batch = await days.roll_up(session, before=now - MAX_GAP - HOUR, since=start)
        rolled += batch
        if not batch:
            break
    counts |= {
        "hours": len(hours),
        "hours_rolled_into_days": rolled,
        "incidents": len(accountant.incidents),
        "states": len(accountant.states),
    }
    if store.dialect == "postgresql":
        async with store.engine.connect() as connection:
            await connection.execute(
                text("SELECT setval('health_sweeps_id_seq', (SELECT max(id) FROM health_sweeps))")
            )
            await connection.commit()
    return counts


async def table_bytes(store: Store) -> dict[str, int]:
    """Each health table's size in the database, its indexes (and TOAST) included."""
    names = [model.__tablename__ for model in HEALTH_TABLES]
    async with store.engine.connect() as connection:
        if store.dialect == "postgresql":
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
            return {
                name: int(
                    await connection.scalar(
                        text("SELECT pg_total_relation_size(CAST(:name AS regclass))"),
                        {"name": name},
                    )
                )
                for name in names
            }
        await connection.execute(text("VACUUM"))
        await connection.execute(text("ANALYZE"))
        rows = await connection.execute(
            text(
                "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat AS d "
                "JOIN sqlite_master AS m ON m.name = d.name GROUP BY m.tbl_name"
            )
        )
        sizes = {str(table): int(size) for table, size in rows}
    return {name: sizes.get(name, 0) for name in names}


async def timed_calls(client: httpx.AsyncClient, calls: int, hours: int) -> tuple[list[float], Any]:
    """Milliseconds of each call after 3 warm-ups, and the last answer."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    path = f"{HEALTH}?hours={hours}"
    for _ in range(3):
        (await client.get(path, headers=headers)).raise_for_status()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples, response


async def time_health(settings: Settings, now: datetime, calls: int) -> dict[str, Any]:
    """``GET /health?hours=N`` through the app in process, for each window of
    ``WINDOWS_HOURS``; 720 h also with the objects alive after start-up frozen out of the
    garbage collector's sight (``gc.freeze()``); and a live sweep, for comparison."""
    app = create_app(settings)
    figures: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        app.state.monitor.clock = lambda: now
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            started = time.perf_counter()
            first = await client.get(f"{HEALTH}?hours=720", headers=headers)
            figures["first_call_ms"] = round((time.perf_counter() - started) * 1000, 1)
            first.raise_for_status()
            for hours in WINDOWS_HOURS:
                samples, response = await timed_calls(client, calls, hours)
                body = response.json()
                figures[f"{hours}h"] = {
                    **median_and_p95(samples),
                    "samples_ms": [round(sample, 1) for sample in samples],
                    "response_bytes": len(response.content),
                    "age_seconds": body["age_seconds"],
                    "precision": body["trend"]["precision"],
                    "uptime_percent": body["trend"]["uptime_percent"],
                    "previous_uptime_percent": body["trend"]["previous_uptime_percent"],
                    "direction": body["trend"]["direction"],
                    "components_in_trend": len(body["trend"]["components"]),
                }
            gc.collect()
            gc.freeze()
            try:
                frozen, _ = await timed_calls(client, calls, 720)
            finally:
                gc.unfreeze()
            figures["720h"]["gc_frozen"] = median_and_p95(frozen)
        sweeps = []
        for _ in range(5):
            started = time.perf_counter()
            await app.state.monitor.sweep()
            sweeps.append((time.perf_counter() - started) * 1000)
        figures["live_sweep"] = median_and_p95(sweeps)
    return figures


async def run_store(
    name: str, url: str, components: Sequence[Component], days: int, calls: int
) -> dict[str, Any]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = days * 1440
    start = now - minutes * INTERVAL
    settings = Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        monitor_in_process=False,
        targets=live_targets(components),
    )
    store = Store(url)
    await prepare_store(store, settings)
    began = time.perf_counter()
    counts = await load(store, components, start, minutes)
    load_seconds = round(time.perf_counter() - began, 1)
    sizes = await table_bytes(store)
    await store.dispose()
    timing = await time_health(settings, now, calls)
    component_days = len(components) * days
    before = sum(sizes.values())
    after = sum(sizes[model.__tablename__] for model in ROLLUP_TABLES)
    return {
        "store": name,
        "days": days,
        "components": len(components),
        "rows": counts,
        "load_seconds": load_seconds,
        "health": timing,
        "table_bytes": sizes,
        "bytes_per_component_day": {
            "raw_and_rollups": round(before / component_days),
            "rollups_only": round(after / component_days),
        },
    }


def show(report: list[dict[str, Any]]) -> None:
    first = report[0]
    print(
        f"\nGET /health?hours=N over {first['days']} days, {first['components']} components "
        f"({first['rows']['sweeps']:,} sweeps, {first['rows']['results']:,} results), "
        "nothing cached, ms:"
    )
    windows = "".join(f"{f'{h} h median':>14}{'p95':>8}" for h in WINDOWS_HOURS)
    print(
        f"{'store':<12}{'first':>8}{windows}  720 h p95 < {TARGET_MS:g}"
        f"{'gc frozen p95':>15}{'live sweep':>12}   loaded in"
    )
    for r in report:
        t = r["health"]
        cells = "".join(
            f"{t[f'{h}h']['median_ms']:>14.1f}{t[f'{h}h']['p95_ms']:>8.1f}" for h in WINDOWS_HOURS
        )
        met = "met" if t["720h"]["p95_ms"] < TARGET_MS else "NOT MET"
        print(
            f"{r['store']:<12}{t['first_call_ms']:>8.1f}{cells}  {met:<14}"
            f"{t['720h']['gc_frozen']['p95_ms']:>15.1f}{t['live_sweep']['median_ms']:>12.1f}"
            f"   {r['load_seconds']} s"
        )
    t = first["health"]["720h"]
    print(
        f"(720 h: precision {t['precision']}, uptime {t['uptime_percent']}% against "
        f"{t['previous_uptime_percent']}% before, {t['direction']}; sweep {t['age_seconds']} s old)"
    )
    print("\nStore bytes per component per day:")
    print(f"{'store':<12}{'raw + rollups':>15}{'rollups only':>14}   per table (MB)")
    for r in report:
        b = r["bytes_per_component_day"]
        tables = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in r["table_bytes"].items())
        print(f"{r['store']:<12}{b['raw_and_rollups']:>15,}{b['rollups_only']:>14,}   {tables}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    components = fleet(args.targets)
    await verify(components, datetime(2026, 11, 2, 8, 30, tzinfo=UTC))
    print(f"bulk rows match the ledger's over the first {VERIFY_SWEEPS} sweeps")
    report = []
    for name in args.stores.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite+aiosqlite:///{folder}/bench.db"
                report.append(await run_store(name, url, components, args.days, args.calls))
        else:
            async with scratch_postgres() as url:
                report.append(await run_store(name, url, components, args.days, args.calls))
        print(f"{name}: done", flush=True)
    show(report)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "health_history.json"
    out.write_text(json.dumps({"target_p95_ms": TARGET_MS, "results": report}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
