"""Health days told as stories: housekeeping rolls complete days of hours up, and every
trend reads the same afterwards, whatever reports come late, whoever rolls at once, and
wherever retention cuts a day.

Reports come every 20 minutes, each believed for 30 (``GAP``), with whole-minute times and
whole-millisecond latencies, so every sum is exact and a figure read from day rows must
equal the one read from hours to the last digit.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.db.models import HealthDay, HealthHour
from app.db.store import Store
from app.schemas.health import ComponentTrend, HealthTrend
from app.services.health.system_monitor import SystemMonitor
from app.vocabulary.health import ComponentStatus
from tests.services.health.test_history import make_sweep, of, record, trend

HEALTHY = ComponentStatus.HEALTHY
UNHEALTHY = ComponentStatus.UNHEALTHY

GAP = timedelta(minutes=30)
EVERY = timedelta(minutes=20)
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
# Late on the sixth day: the edges of every window below cut an hour and a day.
NOW = datetime(2026, 11, 7, 17, 40, tzinfo=UTC)
WINDOWS = (1, 24, 30, 72)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = Store(store_url)
    yield store
    await store.dispose()


def monitor_of(
    store: Store, tmp_path: Path, *, now: datetime = NOW, rollup_days: int = 400
) -> SystemMonitor:
    settings = Settings(
        database_url=store.url,
        data_dir=tmp_path,
        monitor_in_process=False,
        health_rollup_retention_days=rollup_days,
    )
    monitor = SystemMonitor(store, settings, clock=lambda: now)
    monitor.max_gap = GAP
    return monitor


@pytest.fixture
async def monitor(store: Store, tmp_path: Path) -> AsyncIterator[SystemMonitor]:
    monitor = monitor_of(store, tmp_path)
    yield monitor
    await monitor.aclose()


def reports(start: datetime, end: datetime) -> list[datetime]:
    return [start + n * EVERY for n in range(int((end - start) / EVERY) + 1)]


async def record_days(store: Store, *, until: datetime = NOW, seed: int = 7) -> None:
    """Three components with outages at random, one of them slowing down in the last days
    (so a direction is told by latency, which reads the window before's sketches)."""
    rng = random.Random(seed)
    sweeps = []
    for at in reports(START, until):
        slow = 3 if at >= START + timedelta(days=4) else 1
        statuses = {
            name: UNHEALTHY if rng.random() < 0.04 else HEALTHY
            for name in ("api", "billing", "search")
        }
        sweeps.append(make_sweep(at, statuses, latency_ms=float(rng.randint(5, 40) * slow)))
    await record(store, *sweeps, max_gap=GAP)


async def trends(store: Store, now: datetime = NOW) -> list[HealthTrend]:
    return [await trend(store, now=now, hours=hours, max_gap=GAP) for hours in WINDOWS]


async def count(store: Store, model: type[HealthDay] | type[HealthHour]) -> int:
    async with store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def rolled_hours(store: Store) -> int:
    async with store.sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(HealthHour).where(HealthHour.rolled_up)
        )
        return int(found or 0)


def seconds(found: ComponentTrend) -> tuple[float, ...]:
    return (found.healthy_s, found.degraded_s, found.unhealthy_s, found.unknown_s, found.no_data_s)


class TestRollingUp:
    async def test_every_trend_reads_the_same_once_days_are_rolled_up(
        self, store: Store, monitor: SystemMonitor
    ) -> None:
        await record_days(store)
        before = await trends(store)

        await monitor.housekeeping()

        # Five whole days (the sixth is today) of four components, the overall included.
        assert await count(store, HealthDay) == 5 * 4
        assert await rolled_hours(store) == 5 * 24 * 4
        after = await trends(store)
        assert [t.model_dump() for t in after] == [t.model_dump() for t in before]
        assert {t.direction for t in after} >= {"degrading"}

    async def test_hours_stay_for_the_hourly_series(
        self, store: Store, monitor: SystemMonitor
    ) -> None:
        await record_days(store)
        hours = await count(store, HealthHour)

        await monitor.housekeeping()

        assert await count(store, HealthHour) == hours

    async def test_a_day_waits_for_the_credit_of_its_last_report(
        self, store: Store, tmp_path: Path
    ) -> None:
        # Just after midnight, yesterday's last report is still believed: not rolled yet.
        midnight = datetime(2026, 11, 4, 0, 10, tzinfo=UTC)
        await record_days(store, until=midnight)
        monitor = monitor_of(store, tmp_path, now=midnight)

        await monitor.housekeeping()
        await monitor.aclose()

        async with store.sessions() as session:
            days = set(await session.scalars(select(HealthDay.day).distinct()))
        assert days == {START}  # the 3rd waits for the credit of its 23:40 report

    async def test_two_housekeepings_at_once_count_each_hour_once(
        self, store: Store, tmp_path: Path
    ) -> None:
        await record_days(store)
        before = await trends(store)
        other_store = Store(store.url)
        one, other = monitor_of(store, tmp_path), monitor_of(other_store, tmp_path)

        await asyncio.gather(one.housekeeping(), other.housekeeping())
        await one.aclose()
        await other.aclose()
        await other_store.dispose()

        async with store.sessions() as session:
            in_days = await session.scalar(select(func.sum(HealthDay.checks)))
            in_rolled_hours = await session.scalar(
                select(func.sum(HealthHour.checks)).where(HealthHour.rolled_up)
            )
        assert in_days == in_rolled_hours
        assert [t.model_dump() for t in await trends(store)] == [t.model_dump() for t in before]


class TestLateReports:
    async def test_a_report_after_days_of_silence_reopens_the_day_it_credits(
        self, store: Store, monitor: SystemMonitor
    ) -> None:
        # billing reports once on the 3rd at 10:00, then nothing until now, down: its
        # 10:00 is credited only now, into a day housekeeping rolled up meanwhile.
        silent_since = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
        await record_days(store)
        await record(store, make_sweep(silent_since, {"billing-v2": HEALTHY}), max_gap=GAP)
        await monitor.housekeeping()

        await record(store, make_sweep(NOW - EVERY, {"billing-v2": UNHEALTHY}), max_gap=GAP)

        found = of(await trend(store, now=NOW, hours=120, max_gap=GAP), "billing-v2")
        assert found.healthy_s == GAP.total_seconds()  # believed 30 min after its report
        assert found.unhealthy_s == EVERY.total_seconds()  # down since, up to now
        assert found.checks == 2

        await monitor.housekeeping()  # the reopened day is rolled up again

        again = of(await trend(store, now=NOW, hours=120, max_gap=GAP), "billing-v2")
        assert again == found
        async with store.sessions() as session:
            left_as_hours = await session.scalar(
                select(func.count())
                .select_from(HealthHour)
                .where(HealthHour.component == "billing-v2", HealthHour.rolled_up.is_(False))
                .where(HealthHour.hour < datetime(2026, 11, 4, tzinfo=UTC))
            )
        assert left_as_hours == 0

    async def test_credit_into_a_rolled_hour_is_read_once(
        self, store: Store, tmp_path: Path
    ) -> None:
        # Two days on, everything reports again: the time each last report was believed
        # for, read so far from the running state, now lands in rolled-up hours of the 7th.
        later = NOW + timedelta(days=2)
        await record_days(store)
        monitor = monitor_of(store, tmp_path, now=later)
        await monitor.housekeeping()
        await monitor.aclose()
        before = await trends(store, now=later)

        back = {"api": HEALTHY, "billing": HEALTHY, "search": HEALTHY}
        await record(store, make_sweep(later, back), max_gap=GAP)

        for earlier, now in zip(before, await trends(store, now=later), strict=True):
            pairs = [(earlier.overall, now.overall)]
            pairs += [(of(earlier, name), of(now, name)) for name in back]
            for was, is_ in pairs:
                assert seconds(is_) == seconds(was), (earlier.hours, was.name)
                assert is_.checks == was.checks + 1


class TestRetention:
    # Retention four days back from a housekeeping at 17:40 cuts the 3rd at 13:40; from one
    # at midnight it falls between two days.
    @pytest.mark.parametrize("housekeeping_at", [NOW, datetime(2026, 11, 7, tzinfo=UTC)])
    async def test_what_retention_keeps_is_read_once(
        self, store: Store, tmp_path: Path, housekeeping_at: datetime
    ) -> None:
        await record_days(store)
        rolled = monitor_of(store, tmp_path)
        await rolled.housekeeping()
        await rolled.aclose()
        monitor = monitor_of(store, tmp_path, now=housekeeping_at, rollup_days=4)

        await monitor.housekeeping()
        await monitor.aclose()

        cut = housekeeping_at - timedelta(days=4)
        async with store.sessions() as session:
            oldest_hour = await session.scalar(select(func.min(HealthHour.hour)))
            oldest_day = await session.scalar(select(func.min(HealthDay.day)))
            kept = await session.scalar(
                select(func.sum(HealthHour.checks)).where(HealthHour.component == "api")
            )
        assert oldest_hour is not None and cut <= oldest_hour < cut + timedelta(hours=1)
        assert oldest_day is not None and oldest_day >= cut
        found = of(await trend(store, now=NOW, hours=120, max_gap=GAP), "api")
        assert found.checks == kept
