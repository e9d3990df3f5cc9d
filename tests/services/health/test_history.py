"""Health history told as stories with a frozen clock: what the ledger writes for crafted
sweeps, and the uptime, incidents, changes and direction the trend reads back from it.

Expected figures are worked out by hand in each test. The monitor's interval is 60 s, so a
component's status is believed for at most ``MAX_GAP`` (2 intervals) after its last report.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.db.models import HealthHour, HealthResult, HealthSweep
from app.db.store import Store
from app.schemas.health import ComponentTrend, HealthTrend, Sweep
from app.services.health.history import HealthLedger, prune
from app.services.health.system_monitor import SystemMonitor
from app.services.health.trends import HealthTrendQuery
from app.vocabulary.health import CheckResult, ComponentKind, ComponentStatus, worst_status
from app.vocabulary.sketch import RELATIVE_ACCURACY

HEALTHY = ComponentStatus.HEALTHY
DEGRADED = ComponentStatus.DEGRADED
UNHEALTHY = ComponentStatus.UNHEALTHY
UNKNOWN = ComponentStatus.UNKNOWN

MAX_GAP = timedelta(minutes=2)
T0 = datetime(2026, 11, 2, 9, 10, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def make_sweep(
    at: datetime, statuses: Mapping[str, ComponentStatus], latency_ms: float | None = 10.0
) -> Sweep:
    """A sweep as the checks would report it: every component seen at ``at``."""
    results = [
        CheckResult(
            name=name,
            kind=ComponentKind.HTTP,
            status=status,
            latency_ms=None if status is UNHEALTHY else latency_ms,
            message=status.value,
            details={},
            checked_at=at,
        )
        for name, status in statuses.items()
    ]
    return Sweep(
        status=worst_status(statuses.values()),
        checked_at=at,
        duration_ms=1.0,
        components=results,
        system=None,
    )


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = Store(store_url)
    yield store
    await store.dispose()


async def record(
    store: Store,
    *sweeps: Sweep,
    max_gap: timedelta = MAX_GAP,
) -> None:
    """Writes sweeps in order, each in its own unit of work, as the monitor does."""
    for sweep in sweeps:
        async with store.unit_of_work() as session:
            ledger = HealthLedger(session, max_gap=max_gap)
            await ledger.record(sweep, source="test", sweep_row=None)


async def trend(
    store: Store, *, now: datetime, hours: int = 1, max_gap: timedelta = MAX_GAP
) -> HealthTrend:
    async with store.sessions() as session:
        return await HealthTrendQuery(session, hours=hours, now=now, max_gap=max_gap).compute()


def component(found: HealthTrend, name: str) -> dict[str, object]:
    (match,) = [c for c in found.components if c.name == name]
    return match.model_dump()


class TestUptime:
    async def test_uptime_is_the_share_of_time_spent_up(self, store: Store) -> None:
        # Up for 1 min, down for 2, up again for the 2 min until the report: 3 of 5 up.
        await record(
            store,
            make_sweep(T0, {"payments": HEALTHY}),
            make_sweep(T0 + minutes(1), {"payments": UNHEALTHY}),
            make_sweep(T0 + minutes(3), {"payments": HEALTHY}),
        )

        found = component(await trend(store, now=T0 + minutes(5)), "payments")

        assert found["uptime_percent"] == 60.0
        assert found["healthy_s"] == 180.0
        assert found["unhealthy_s"] == 120.0
        assert found["checks"] == 3
        assert found["failures"] == 1
        assert found["status_changes"] == 2
        assert found["incidents"] == [
            {
                "component": "payments",
                "started_at": T0 + minutes(1),
                "ended_at": T0 + minutes(3),
                "duration_s": 120.0,
                "message": "unhealthy",
            }
        ]

    async def test_silence_longer_than_the_gap_is_no_data_not_uptime(self, store: Store) -> None:
        # Up at T0, then nothing for 10 min, then down: only 2 min of the silence is
        # believed up; the other 8 are no data, so 2 min up against 1 min down.
        await record(
            store,
            make_sweep(T0, {"payments": HEALTHY}),
            make_sweep(T0 + minutes(10), {"payments": UNHEALTHY}),
        )

        found = component(await trend(store, now=T0 + minutes(11)), "payments")

        assert found["healthy_s"] == 120.0
        assert found["unhealthy_s"] == 60.0
        assert found["uptime_percent"] == round(100 * 2 / 3, 4)
        # The window is the 60 minutes up to 09:21, of which 3 min had a status.
        assert found["no_data_s"] == 57 * 60.0

    async def test_a_component_that_stopped_reporting_fades_into_no_data(
        self, store: Store
    ) -> None:
        await record(store, make_sweep(T0, {"payments": HEALTHY}))

        found = component(await trend(store, now=T0 + minutes(30)), "payments")

        assert found["healthy_s"] == 120.0
        assert found["no_data_s"] == 60 * 60.0 - 120.0

    async def test_degraded_counts_as_up_and_unknown_is_set_apart(self, store: Store) -> None:
        await record(
            store,
            make_sweep(T0, {"payments": DEGRADED}),
            make_sweep(T0 + minutes(1), {"payments": UNKNOWN}),
            make_sweep(T0 + minutes(2), {"payments": UNHEALTHY}),
            make_sweep(T0 + minutes(3), {"payments": HEALTHY}),
        )

        found = component(await trend(store, now=T0 + minutes(4)), "payments")

        assert found["degraded_s"] == 60.0
        assert found["unknown_s"] == 60.0
        assert found["unhealthy_s"] == 60.0
        assert found["healthy_s"] == 60.0
        assert found["uptime_percent"] == round(100 * 2 / 3, 4)  # unknown judged neither way

    async def test_time_is_credited_to_each_hour_it_falls_in(self, store: Store) -> None:
        # Down from 09:59 to 10:01: one minute in each hour.
        ten = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
        await record(
            store,
            make_sweep(ten - minutes(1), {"payments": UNHEALTHY}),
            make_sweep(ten + minutes(1), {"payments": HEALTHY}),
        )

        async with store.sessions() as session:
            rows = (
                await session.scalars(
                    select(HealthHour)
                    .where(HealthHour.component == "payments")
                    .order_by(HealthHour.hour)
                )
            ).all()

        assert [(row.hour, row.unhealthy_s, row.healthy_s) for row in rows] == [
            (ten - timedelta(hours=1), 60.0, 0.0),
            (ten, 60.0, 0.0),
        ]

    async def test_a_late_result_does_not_rewrite_history(self, store: Store) -> None:
        await record(
            store,
            make_sweep(T0, {"payments": HEALTHY}),
            make_sweep(T0 + minutes(2), {"payments": HEALTHY}),
            make_sweep(T0 + minutes(1), {"payments": UNHEALTHY}),  # arrives last
        )

        found = component(await trend(store, now=T0 + minutes(2)), "payments")

        assert found["uptime_percent"] == 100.0
        assert found["incidents"] == []
        async with store.sessions() as session:
            kept = await session.scalar(select(func.count()).select_from(HealthResult))
        assert kept == 3  # the late result is kept raw all the same


class TestOverall:
    async def test_overall_is_the_time_any_component_was_down(self, store: Store) -> None:
        # The database is fine throughout; payments is down 2 of the 5 minutes.
        await record(
            store,
            make_sweep(T0, {"db": HEALTHY, "payments": HEALTHY}),
            make_sweep(T0 + minutes(1), {"db": HEALTHY, "payments": UNHEALTHY}),
            make_sweep(T0 + minutes(3), {"db": HEALTHY, "payments": HEALTHY}),
        )

        found = await trend(store, now=T0 + minutes(5))

        assert found.uptime_percent == 60.0
        assert found.overall.name == "*"
        assert found.overall.uptime_percent == 60.0
        assert found.overall.checks == 3
        assert found.overall.status_changes == 2
        assert [(i.started_at, i.ended_at) for i in found.overall.incidents] == [
            (T0 + minutes(1), T0 + minutes(3))
        ]
        assert component(found, "db")["uptime_percent"] == 100.0
        assert [c.name for c in found.components] == ["db", "payments"]

    async def test_an_incident_still_going_lasts_until_now(self, store: Store) -> None:
        await record(
            store,
            make_sweep(T0, {"payments": HEALTHY}),
            make_sweep(T0 + minutes(1), {"payments": UNHEALTHY}),
        )

        found = await trend(store, now=T0 + minutes(4))

        (incident,) = found.overall.incidents
        assert incident.ended_at is None
        assert incident.duration_s == 180.0


class TestLatency:
    async def test_latency_average_and_p95_come_from_the_hourly_sketches(
        self, store: Store
    ) -> None:
        latencies = [10.0] * 19 + [400.0]
        await record(
            store,
            *(
                make_sweep(T0 + minutes(i), {"api": HEALTHY}, latency_ms=latency)
                for i, latency in enumerate(latencies)
            ),
        )

        found = component(await trend(store, now=T0 + minutes(20)), "api")

        assert found["latency_avg_ms"] == round(sum(latencies) / len(latencies), 2)
        assert found["latency_p95_ms"] == pytest.approx(10.0, rel=0.01)


def half_hourly(start: datetime, end: datetime) -> list[datetime]:
    moments, at = [], start
    while at <= end:
        moments.append(at)
        at += minutes(30)
    return moments


class TestDirection:
    # The last 24 h up to 10:00 against the 24 h before them, which end at 10:00 yesterday.
    # The monitor reported every 30 min, so a status holds for up to an hour.
    NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    START = NOW - timedelta(hours=48)
    MIDDLE = NOW - timedelta(hours=24)
    GAP = timedelta(hours=1)

    async def test_recovering_uptime_is_improving(self, store: Store) -> None:
        await record(
            store,
            *(
                make_sweep(at, {"api": UNHEALTHY if at < self.START + self.GAP * 6 else HEALTHY})
                for at in half_hourly(self.START, self.NOW)
            ),
            max_gap=self.GAP,
        )

        found = await trend(store, now=self.NOW, hours=24, max_gap=self.GAP)

        assert found.direction == "improving"
        assert found.direction_reason == "uptime 75.00% → 100.00% against the window before"
        assert (found.previous_uptime_percent, found.uptime_percent) == (75.0, 100.0)

    async def test_rising_latency_at_steady_uptime_is_degrading(self, store: Store) -> None:
        await record(
            store,
            *(
                make_sweep(at, {"api": HEALTHY}, latency_ms=50.0 if at < self.MIDDLE else 500.0)
                for at in half_hourly(self.START, self.NOW)
            ),
            max_gap=self.GAP,
        )

        found = await trend(store, now=self.NOW, hours=24, max_gap=self.GAP)

        assert found.uptime_percent == 100.0
        assert found.direction == "degrading"
        assert found.direction_reason == "latency p95 50 ms → 500 ms"

    async def test_steady_service_is_stable(self, store: Store) -> None:
        await record(
            store,
            *(make_sweep(at, {"api": HEALTHY}) for at in half_hourly(self.START, self.NOW)),
            max_gap=self.GAP,
        )

        found = await trend(store, now=self.NOW, hours=24, max_gap=self.GAP)

        assert found.direction == "stable"
        assert "within noise" in found.direction_reason


class TestNoWindowBefore:
    async def test_a_sliver_of_history_before_the_window_is_not_compared_with(
        self, store: Store
    ) -> None:
        # Watched from 10 min before the last hour began: a healthy sliver, then an outage.
        start = TestRollingWindow.NOW - minutes(70)
        await record(
            store,
            *(
                make_sweep(at, {"api": HEALTHY if at < start + minutes(30) else UNHEALTHY})
                for at in every_minute(start, TestRollingWindow.NOW)
            ),
        )

        found = await trend(store, now=TestRollingWindow.NOW, hours=1)

        assert found.previous_uptime_percent == 100.0
        assert found.direction == "stable"
        assert found.direction_reason == "not enough history in the window before to compare with"


class TestHousekeeping:
    # Ninety days, one report a day (at 01:00, the last one yesterday), each believed for
    # an hour: 90 hours with a status, two of them down, the rest of the window no data.
    NOW = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    DAY = timedelta(days=1)
    GAP = timedelta(hours=1)
    HOURS = 90 * 24

    @pytest.fixture
    async def monitor(self, store: Store, tmp_path: Path) -> AsyncIterator[SystemMonitor]:
        settings = Settings(
            database_url=store.url,
            data_dir=tmp_path,
            monitor_in_process=False,
            health_retention_days=30,
            health_rollup_retention_days=400,
        )
        monitor = SystemMonitor(store, settings, clock=lambda: self.NOW)
        yield monitor
        await monitor.aclose()

    async def record_ninety_days(self, store: Store) -> None:
        start = self.NOW - timedelta(hours=self.HOURS - 1)
        await record(
            store,
            *(
                make_sweep(
                    start + day * self.DAY, {"api": UNHEALTHY if day in (10, 50) else HEALTHY}
                )
                for day in range(90)
            ),
            max_gap=self.GAP,
        )

    async def ninety_day_trend(self, store: Store) -> HealthTrend:
        return await trend(store, now=self.NOW, hours=self.HOURS, max_gap=self.GAP)

    async def test_pruning_raw_results_leaves_ninety_day_uptime_unchanged(
        self, store: Store, monitor: SystemMonitor
    ) -> None:
        await self.record_ninety_days(store)
        before = await self.ninety_day_trend(store)

        removed = await monitor.housekeeping()

        after = await self.ninety_day_trend(store)
        async with store.sessions() as session:
            sweeps = await session.scalar(select(func.count()).select_from(HealthSweep))
            results = await session.scalar(select(func.count()).select_from(HealthResult))
        assert removed == 60  # days 0..59 are older than the 30 days kept raw
        assert (sweeps, results) == (30, 30)
        assert after == before
        assert after.uptime_percent == round(100 * 88 / 90, 4)
        assert after.overall.no_data_s == (self.HOURS - 90) * 3600.0
        assert len(after.overall.incidents) == 2

    async def test_rollups_go_after_their_own_retention(
        self, store: Store, monitor: SystemMonitor
    ) -> None:
        await self.record_ninety_days(store)
        monitor.settings = monitor.settings.model_copy(
            update={"health_retention_days": 1, "health_rollup_retention_days": 45}
        )

        await monitor.housekeeping()

        async with store.sessions() as session:
            oldest = await session.scalar(select(func.min(HealthHour.hour)))
        assert oldest is not None and oldest >= self.NOW - timedelta(days=45)
        found = await self.ninety_day_trend(store)
        assert found.uptime_percent == round(100 * 44 / 45, 4)  # day 50 is still in
        assert len(found.overall.incidents) == 1  # day 10's incident ended too long ago


def of(found: HealthTrend, name: str) -> ComponentTrend:
    (match,) = [c for c in found.components if c.name == name]
    return match


def every_minute(start: datetime, end: datetime) -> list[datetime]:
    return [start + minutes(n) for n in range(int((end - start) / minutes(1)) + 1)]


class TestRollingWindow:
    """At 06:02 "the last hour" is 05:02-06:02, compared with 04:02-05:02: not the two
    minutes since 06:00 against the whole hour before."""

    NOW = datetime(2026, 11, 2, 6, 2, tzinfo=UTC)
    DOWN = (
        (datetime(2026, 11, 2, 4, 30, tzinfo=UTC), minutes(10)),  # the window before
        (datetime(2026, 11, 2, 5, 0, tzinfo=UTC), minutes(1)),  # before 05:02: not ours
        (datetime(2026, 11, 2, 5, 30, tzinfo=UTC), minutes(5)),  # the last hour
    )

    def status_at(self, at: datetime) -> ComponentStatus:
        down = any(start <= at < start + length for start, length in self.DOWN)
        return UNHEALTHY if down else HEALTHY

    async def record_morning(self, store: Store, until: datetime = NOW) -> None:
        start = datetime(2026, 11, 2, 3, 55, tzinfo=UTC)
        await record(
            store,
            *(
                make_sweep(at, {"payments": self.status_at(at)})
                for at in every_minute(start, until)
            ),
        )

    async def test_the_last_hour_is_the_sixty_minutes_up_to_now(self, store: Store) -> None:
        await self.record_morning(store)

        found = await trend(store, now=self.NOW, hours=1)

        assert (found.window_start, found.window_end) == (self.NOW - minutes(60), self.NOW)
        assert found.previous_window_start == self.NOW - minutes(120)
        assert found.precision == "exact"
        payments = of(found, "payments")
        assert (payments.healthy_s, payments.unhealthy_s) == (55 * 60.0, 5 * 60.0)
        assert payments.no_data_s == 0.0
        assert payments.checks == 61  # 05:02 to 06:02, both reports included
        assert payments.failures == 5
        assert payments.status_changes == 2
        assert [i.started_at.minute for i in payments.incidents] == [30]
        assert found.uptime_percent == round(100 * 55 / 60, 4)
        assert found.previous_uptime_percent == round(100 * 49 / 60, 4)  # 11 min down
        assert found.direction == "improving"

    async def test_a_window_of_whole_hours_needs_no_raw_results(self, store: Store) -> None:
        await self.record_morning(store)

        found = await trend(store, now=datetime(2026, 11, 2, 6, 0, tzinfo=UTC), hours=1)

        assert found.window_start == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
        assert found.precision == "exact"
        assert of(found, "payments").unhealthy_s == 6 * 60.0

    async def test_once_raw_results_are_pruned_an_edge_moves_to_the_nearest_hour(
        self, store: Store
    ) -> None:
        await self.record_morning(store)
        async with store.unit_of_work() as session:  # as housekeeping does, raw only
            await prune(
                session,
                raw_before=datetime(2026, 11, 2, 5, 30, tzinfo=UTC),
                rollups_before=datetime(2026, 1, 1, tzinfo=UTC),
            )

        found = await trend(store, now=self.NOW, hours=1)

        assert found.precision == "hour"
        assert found.window_start == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # 05:02, rounded
        assert found.previous_window_start == datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
        payments = of(found, "payments")
        assert payments.unhealthy_s == 6 * 60.0  # 05:00 and 05:30 both count now
        assert payments.no_data_s == 0.0

    async def test_an_edge_late_in_its_hour_moves_on_to_the_next_one(self, store: Store) -> None:
        now = datetime(2026, 11, 2, 5, 45, tzinfo=UTC)
        await self.record_morning(store, until=now)
        async with store.unit_of_work() as session:
            await prune(
                session,
                raw_before=datetime(2026, 11, 2, 5, 0, tzinfo=UTC),
                rollups_before=datetime(2026, 1, 1, tzinfo=UTC),
            )

        found = await trend(store, now=now, hours=1)

        assert found.precision == "hour"
        assert found.window_start == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # from 04:45
        assert found.previous_window_start == datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
        payments = of(found, "payments")
        assert (payments.healthy_s, payments.unhealthy_s) == (39 * 60.0, 6 * 60.0)
        assert found.previous_uptime_percent == round(100 * 50 / 60, 4)


class TestLatencyQuantiles:
    """Every reported quantile is within the sketch's 0.5% of the exact one (rank
    floor(q x (n - 1)) of the window's latencies), in order, whatever the shape: the audit
    saw a p95 below the average, which a few slow checks among many fast ones give."""

    NOW = datetime(2026, 11, 2, 12, 20, tzinfo=UTC)  # mid-hour: edge hours are split

    @pytest.mark.parametrize("seed", [1, 2])
    async def test_quantiles_agree_with_the_exact_ones(self, store: Store, seed: int) -> None:
        rng = random.Random(seed)
        moments = every_minute(self.NOW - timedelta(hours=2, minutes=30), self.NOW)
        # Mostly about 0.44 ms, with one check in fifty taking 5-15 ms.
        latencies = [
            round(rng.uniform(5.0, 15.0) if rng.random() < 0.02 else rng.gauss(0.44, 0.03), 2)
            for _ in moments
        ]
        await record(
            store,
            *(
                make_sweep(at, {"store": HEALTHY}, latency_ms=latency)
                for at, latency in zip(moments, latencies, strict=True)
            ),
        )

        found = of(await trend(store, now=self.NOW, hours=1), "store")

        in_window = sorted(
            latency
            for at, latency in zip(moments, latencies, strict=True)
            if at >= self.NOW - timedelta(hours=1)
        )
        assert found.checks == len(in_window)
        reported = [
            found.latency_p50_ms,
            found.latency_p95_ms,
            found.latency_p99_ms,
            found.latency_max_ms,
        ]
        assert None not in reported
        assert reported == sorted(value for value in reported if value is not None)
        for q, value in zip((0.5, 0.95, 0.99), reported, strict=False):
            exact = in_window[math.floor(q * (len(in_window) - 1))]
            assert value == pytest.approx(exact, rel=RELATIVE_ACCURACY, abs=0.005)
        assert found.latency_max_ms == max(in_window)
        assert found.latency_avg_ms == round(sum(in_window) / len(in_window), 2)
