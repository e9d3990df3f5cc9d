"""A store that looks lived in: components with 90 days of history, services with two
weeks of requests, an issue desk and alerts — for the browser tests, the screenshots and
``bench/dashboard.py``.

History is written as the server would have left it, in bulk: hourly health rows (seconds
per status and a latency sketch each) with outages and slow spells, incidents and running
states; request hour rows, and minute rows for the last two hours, with sketches built by
``encode_groups``. The last minutes of health then go through the real ``HealthLedger``,
so the newest results, the states and the current hour are the ledger's own. Issues are
filed and moved by the real ``IssueTracker`` (the bench bulk-loads its 100,000 instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
from sqlalchemy import insert

from app.core.hours import HOUR, hour_floor
from app.db.models import (
    Alert,
    ComponentState,
    HealthHour,
    HealthIncident,
    RequestHour,
    RequestMinute,
    User,
)
from app.db.models.health import OVERALL
from app.db.store import Store
from app.schemas.health import Sweep
from app.schemas.issues import CommentCreate, IssueCreate, IssueUpdate, StatusChange
from app.services import accounts
from app.services.health.history import HealthLedger
from app.services.issues import IssueTracker, ResolutionTargets
from app.vocabulary.accounts import Role
from app.vocabulary.alerts import AlertSeverity, AlertState
from app.vocabulary.health import CheckResult, ComponentStatus, worst_status
from app.vocabulary.issues import IssueStatus, IssueType, Priority
from app.vocabulary.performance import RequestSource, StatusClass
from app.vocabulary.sketch import encode_groups
from tests.api.maintenance.conftest import Clock

INSERT_CHUNK: Final = 5000
CHECK_INTERVAL: Final = timedelta(minutes=1)
LEDGER_MINUTES: Final = 10
# Minute rows kept: enough for the last hour and the hour before, at any minute's edge.
MINUTE_HOURS: Final = 3
_CLASSES: Final = (StatusClass.SUCCESS, StatusClass.CLIENT_ERROR, StatusClass.SERVER_ERROR)


@dataclass(frozen=True)
class Component:
    name: str
    kind: str
    latency_ms: float
    now: ComponentStatus = ComponentStatus.HEALTHY
    outages_per_month: float = 1.0


COMPONENTS: Final = (
    Component("api-gateway", "http", 42.0),
    Component("auth-service", "http", 28.0),
    Component("orders-db", "database", 3.5),
    Component("payments-api", "http", 120.0, ComponentStatus.UNHEALTHY, 3.0),
    Component("search", "http", 85.0, ComponentStatus.DEGRADED, 2.0),
    Component("session-cache", "redis", 0.8),
    Component("email-relay", "tcp", 12.0, outages_per_month=0.5),
    Component("store", "database", 1.2, outages_per_month=0.0),
    Component("system", "system", 250.0, outages_per_month=0.0),
)


def fleet(count: int) -> list[Component]:
    """``count`` components: the named ones first, then numbered HTTP and Redis targets."""
    found = list(COMPONENTS[:count])
    for number in range(len(found) + 1, count + 1):
        kind = "redis" if number % 5 == 0 else "http"
        status = ComponentStatus.HEALTHY
        if number % 97 == 0:
            status = ComponentStatus.UNHEALTHY
        elif number % 41 == 0:
            status = ComponentStatus.DEGRADED
        found.append(Component(f"target-{number:04d}", kind, 20.0 + number % 60, status))
    return found


async def bulk(store: Store, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Inserts rows in chunks, each in its own unit of work."""
    for start in range(0, len(rows), INSERT_CHUNK):
        async with store.unit_of_work() as session:
            await session.execute(insert(model), list(rows[start : start + INSERT_CHUNK]))


def health_hours(
    components: Sequence[Component],
    *,
    start: datetime,
    end: datetime,
    checks: int = 60,
    seed: int = 3,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hourly rows over ``[start, end)`` for every component, and the incidents in them.

    ``checks`` an hour; an outage takes twenty minutes of an hour down, a slow spell twenty
    minutes slow; latency is long-tailed around each component's own.
    """
    rng = np.random.default_rng(seed)
    hours = int((end - start) / HOUR)
    rows: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    latencies = [
        rng.lognormal(np.log(c.latency_ms), 0.35, size=(hours, checks)) for c in components
    ]
    values = np.concatenate([block.ravel() for block in latencies])
    groups = np.repeat(np.arange(len(components) * hours, dtype=np.int64), checks)
    sketches = encode_groups(values, groups, len(components) * hours)
    for index, component in enumerate(components):
        outage = rng.random(hours) < component.outages_per_month / (30 * 24)
        slow = (rng.random(hours) < 2 * component.outages_per_month / (30 * 24)) & ~outage
        block = latencies[index]
        for hour in range(hours):
            at = start + hour * HOUR
            down = 1200.0 if outage[hour] else 0.0
            degraded = 1200.0 if slow[hour] else 0.0
            failures = checks // 3 if outage[hour] else 0
            rows.append(
                {
                    "component": component.name,
                    "kind": component.kind,
                    "hour": at,
                    "healthy_s": 3600.0 - down - degraded,
                    "degraded_s": degraded,
                    "unhealthy_s": down,
                    "unknown_s": 0.0,
                    "maintenance_s": 0.0,
                    "checks": checks,
                    "failures": failures,
                    "status_changes": 2 if down or degraded else 0,
                    "latency_sum_ms": float(block[hour].sum()),
                    "latency_count": checks,
                    "latency_sketch": sketches[index * hours + hour],
                }
            )
            if down:
                incidents.append(
                    {
                        "component": component.name,
                        "kind": component.kind,
                        "started_at": at + timedelta(minutes=10),
                        "ended_at": at + timedelta(minutes=30),
                        "message": "ConnectError: All connection attempts failed",
                    }
                )
    return rows, incidents


def check_result(component: Component, at: datetime, rng: np.random.Generator) -> CheckResult:
    latency = float(rng.lognormal(np.log(component.latency_ms), 0.3))
    if component.now is ComponentStatus.UNHEALTHY:
        return CheckResult(
            name=component.name,
            kind=component.kind,
            status=component.now,
            latency_ms=None,
            message="HTTP 503 from /health",
            details={"status_code": 503},
            checked_at=at,
        )
    if component.now is ComponentStatus.DEGRADED:
        latency *= 12
        message = f"slow: {latency:.0f} ms > {component.latency_ms * 4:.0f} ms; 200 OK"
    else:
        message = f"{component.kind} answered in {latency:.1f} ms"
    return CheckResult(
        name=component.name,
        kind=component.kind,
        status=component.now,
        latency_ms=round(latency, 2),
        message=message,
        details={"latency_budget_ms": component.latency_ms * 4},
        checked_at=at,
    )


async def seed_health(
    store: Store, components: Sequence[Component], now: datetime, *, days: int = 90
) -> None:
    """90 days of hourly history up to this hour, then this hour's sweeps by the ledger."""
    this_hour = hour_floor(now)
    start = this_hour - days * 24 * HOUR
    rows, incidents = health_hours(components, start=start, end=this_hour)
    await bulk(store, HealthHour, rows)
    await bulk(store, HealthIncident, incidents)
    # The overall status has its own history (the worst of the components), and no latency.
    overall, _ = health_hours([Component(OVERALL, "system", 1.0)], start=start, end=this_hour)
    await bulk(
        store,
        HealthHour,
        [
            {**row, "latency_sum_ms": 0.0, "latency_count": 0, "latency_sketch": b""}
            for row in overall
        ],
    )
    # Where each stood at the top of the hour: the ledger carries on from there.
    first = max(now - LEDGER_MINUTES * CHECK_INTERVAL, this_hour)
    states = []
    for number, component in enumerate(components):
        since = first - timedelta(hours=3 + number % 40, minutes=7 * number % 60)
        if component.now is not ComponentStatus.HEALTHY:
            since = first  # the trouble started with the ledger's first sweep below
        states.append(
            {
                "component": component.name,
                "kind": component.kind,
                "status": ComponentStatus.HEALTHY,
                "since": since,
                "last_checked_at": first - CHECK_INTERVAL,
                "last_latency_ms": component.latency_ms,
                "last_message": "",
            }
        )
    await bulk(store, ComponentState, states)
    rng = np.random.default_rng(11)
    at = first
    while at <= now:
        results = [check_result(component, at, rng) for component in components]
        sweep = Sweep(
            status=worst_status(r.status for r in results),
            checked_at=at,
            duration_ms=180.0,
            components=results,
            system=None,
        )
        async with store.unit_of_work() as session:
            ledger = HealthLedger(session, max_gap=2 * CHECK_INTERVAL)
            await ledger.record(sweep, source="server", sweep_row=None)
        at += CHECK_INTERVAL


@dataclass(frozen=True)
class Service:
    name: str
    routes: tuple[str, ...]
    requests_per_hour: int


SERVICES: Final = (
    Service(
        "shop",
        (
            "GET /products",
            "GET /products/{id}",
            "POST /cart/items",
            "GET /cart",
            "POST /checkout",
            "GET /orders/{id}",
            "GET /search",
            "POST /login",
        ),
        6000,
    ),
    Service(
        "payments",
        ("POST /charges", "GET /charges/{id}", "POST /refunds", "POST /webhooks/card"),
        1500,
    ),
    Service("catalog", ("GET /items", "GET /items/{id}", "PUT /items/{id}"), 2500),
)


def request_rows(
    services: Sequence[Service],
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    seed: int = 5,
) -> list[dict[str, Any]]:
    """Stored tallies of every step in ``[start, end)``: one row per service, route and
    status class, with Poisson volumes, long-tailed durations and a few failing routes."""
    rng = np.random.default_rng(seed)
    steps = int((end - start) / step)
    scale = step / HOUR
    rows: list[dict[str, Any]] = []
    for service in services:
        routes = len(service.routes)
        weights = 1 / np.arange(1, routes + 1)
        per_route = service.requests_per_hour * scale * weights / weights.sum()
        counts = rng.poisson(per_route, size=(steps, routes))
        median = np.geomspace(8, 400, routes)[rng.permutation(routes)]
        failing = np.where(np.arange(routes) % 4 == 2, 0.04, 0.002)
        route_of = np.tile(np.arange(routes), steps).repeat(counts.ravel())
        step_of = np.repeat(np.arange(steps), routes).repeat(counts.ravel())
        durations = np.exp(np.log(median[route_of]) + 0.7 * rng.standard_normal(route_of.size))
        draw = rng.random(route_of.size)
        klass = np.where(draw < failing[route_of], 2, np.where(draw < 0.03, 1, 0))
        key = (step_of * routes + route_of) * len(_CLASSES) + klass
        keys, group = np.unique(key, return_inverse=True)
        blobs = encode_groups(durations, group.astype(np.int64), keys.size)
        tallies = np.bincount(group, minlength=keys.size)
        sums = np.bincount(group, weights=durations, minlength=keys.size)
        maxima = np.full(keys.size, 0.0)
        np.maximum.at(maxima, group, durations)
        for n, k in enumerate(keys.tolist()):
            at_step, rest = divmod(k, routes * len(_CLASSES))
            route, klass_index = divmod(rest, len(_CLASSES))
            method, path = service.routes[route].split(" ", 1)
            rows.append(
                {
                    "at": start + at_step * step,
                    "service": service.name,
                    "source": RequestSource.AGENT,
                    "route": path,
                    "method": method,
                    "status_class": _CLASSES[klass_index],
                    "count": int(tallies[n]),
                    "sum_ms": float(sums[n]),
                    "max_ms": float(maxima[n]),
                    "sketch": blobs[n],
                    "exemplars": [],
                }
            )
    return rows


async def seed_requests(
    store: Store, services: Sequence[Service], now: datetime, *, days: int = 14
) -> None:
    """Hour rows for every whole hour of ``days``, minute rows for the last few hours (the
    ones before this hour rolled up, as the flusher leaves them)."""
    this_hour = hour_floor(now)
    hours = request_rows(services, start=this_hour - days * 24 * HOUR, end=this_hour, step=HOUR)
    await bulk(
        store,
        RequestHour,
        [{**{k: v for k, v in row.items() if k != "at"}, "hour": row["at"]} for row in hours],
    )
    minute_start = this_hour - MINUTE_HOURS * HOUR
    minute_end = now.replace(second=0, microsecond=0)
    minutes = request_rows(
        services, start=minute_start, end=minute_end, step=timedelta(minutes=1), seed=9
    )
    await bulk(
        store,
        RequestMinute,
        [
            {
                **{k: v for k, v in row.items() if k != "at"},
                "minute": row["at"],
                "process": "seed",
                "rolled_up": row["at"] < this_hour,
            }
            for row in minutes
        ],
    )


ISSUES: Final = (
    ("Checkout button spins forever on Safari", IssueType.BUG, Priority.CRITICAL, "in_progress"),
    ("Export to CSV drops the last row", IssueType.BUG, Priority.HIGH, "testing"),
    ("Dark mode for the dashboard", IssueType.FEATURE_REQUEST, Priority.LOW, "open"),
    ("Password reset email never arrives", IssueType.SUPPORT, Priority.HIGH, "assigned"),
    ("payments-api answers 503", IssueType.INCIDENT, Priority.CRITICAL, "triaged"),
    ("Search results are slow after 6 pm", IssueType.BUG, Priority.MEDIUM, "resolved"),
    ("Invoice PDF shows the wrong VAT", IssueType.BUG, Priority.HIGH, "closed"),
    ("Add webhooks for refunds", IssueType.FEATURE_REQUEST, Priority.MEDIUM, "open"),
)
_PATH: Final = ("triaged", "assigned", "in_progress", "testing", "resolved", "verified", "closed")


async def seed_issues(
    store: Store,
    *,
    reporter: User,
    developer: User,
    clock: Callable[[], datetime],
    hours: dict[Priority, float],
) -> None:
    """The desk's issues, filed by ``reporter`` and worked by ``developer`` with the real
    tracker, each taken along the workflow to its status."""
    for number, (title, kind, priority, status) in enumerate(ISSUES):
        # Filed over the last days, each move most of an hour after the one before.
        moment = Clock(clock() - timedelta(hours=60 - 6 * number))
        async with store.unit_of_work() as session:
            tracker = IssueTracker(session, targets=ResolutionTargets(hours=hours), clock=moment)
            created = await tracker.create(
                IssueCreate(
                    title=title,
                    description=f"{title}. Seen by several customers since this morning.",
                    issue_type=kind,
                    priority=priority,
                    labels=["customer"] if kind is IssueType.BUG else [],
                ),
                reporter,
            )
            issue = await tracker.get(created.id, developer)
            for step in _PATH[: _PATH.index(status) + 1] if status != "open" else ():
                if step == "assigned":
                    await tracker.update(issue, IssueUpdate(assignee=developer.username), developer)
                moment.advance(minutes=50)
                who = reporter if step == "verified" else developer
                await tracker.change_status(issue, StatusChange(status=IssueStatus(step)), who)
                issue = await tracker.get(created.id, developer)
            await tracker.comment(
                issue,
                CommentCreate(body="Looking into it; logs attached.", internal=True),
                developer,
            )


async def seed_alerts(store: Store, now: datetime) -> None:
    """A firing alert for the component that is down, and one resolved yesterday."""
    common = {"count": 1, "suppressed": False, "figures": {}}
    await bulk(
        store,
        Alert,
        [
            {
                **common,
                "key": "component_down:payments-api",
                "rule": "component_down",
                "component": "payments-api",
                "severity": AlertSeverity.CRITICAL,
                "state": AlertState.FIRING,
                "message": "payments-api is unhealthy: HTTP 503 from /health",
                "first_seen": now - timedelta(minutes=LEDGER_MINUTES),
                "last_seen": now,
                "count": 4,
            },
            {
                **common,
                "key": "slow_dependency:search",
                "rule": "slow_dependency",
                "component": "search",
                "severity": AlertSeverity.WARNING,
                "state": AlertState.RESOLVED,
                "message": "search p95 over 1000 ms for 5 minutes",
                "first_seen": now - timedelta(days=1, hours=2),
                "last_seen": now - timedelta(days=1),
                "resolved_at": now - timedelta(days=1),
            },
        ],
    )


PASSWORD: Final = "correct horse battery"
DEVELOPER: Final = "dana"
REPORTER: Final = "rita"


async def seed_people(store: Store) -> tuple[User, User]:
    """A developer and a user who signs in to report issues, both with ``PASSWORD``."""
    async with store.unit_of_work() as session:
        developer = await accounts.create_user(
            session, username=DEVELOPER, role=Role.DEVELOPER, password=PASSWORD
        )
        reporter = await accounts.create_user(
            session, username=REPORTER, role=Role.USER, password=PASSWORD
        )
    return developer, reporter


async def seed_dashboard(
    store: Store,
    now: datetime,
    *,
    components: Sequence[Component] = COMPONENTS,
    services: Sequence[Service] = SERVICES,
    resolution_hours: dict[Priority, float],
) -> None:
    """Everything the pages show, as of ``now``."""
    developer, reporter = await seed_people(store)
    await seed_health(store, components, now)
    await seed_requests(store, services, now)
    await seed_issues(
        store, reporter=reporter, developer=developer, clock=lambda: now, hours=resolution_hours
    )
    await seed_alerts(store, now)


# The seeded components the monitor is configured with: nothing listens at their address
# (no monitor runs in the stories); three are on the public status page.
PUBLIC_NAMES: Final = {
    "api-gateway": "Website and API",
    "payments-api": "Payments",
    "search": "Search",
}


def configured_targets(components: Sequence[Component] = COMPONENTS) -> list[dict[str, Any]]:
    """The HTTP components as settings targets, the public ones under their shown names."""
    return [
        {
            "name": c.name,
            "kind": "http",
            "url": f"http://127.0.0.1:9/{c.name}",
            "public": c.name in PUBLIC_NAMES,
            **({"display_name": PUBLIC_NAMES[c.name]} if c.name in PUBLIC_NAMES else {}),
        }
        for c in components
        if c.kind == "http"
    ]
