"""Daily uptime bars told as stories with a frozen clock: crafted sweeps go through the
ledger, and ``daily_uptime`` reads the bars back from the hourly rollups it wrote.

The ledger believes a status for at most the gap allowed after a report; these stories
report an hour or more apart, so they allow a gap of three hours. Figures are worked out
by hand in each test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.db.models.health import OVERALL
from app.db.store import Store
from app.services.health import DailyUptime, daily_uptime, period_uptime
from tests.services.health import test_history
from tests.services.health.test_history import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    UNKNOWN,
    make_sweep,
    record,
)

store = test_history.store  # the history stories' clean store, a fixture
GAP = timedelta(hours=3)
DAY_ONE = datetime(2026, 11, 2, tzinfo=UTC)
DAY_TWO = DAY_ONE + timedelta(days=1)


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)


async def bars(
    store: Store, *, days: int, now: datetime, components: list[str] | None = None
) -> dict[str, list[DailyUptime]]:
    async with store.sessions() as session:
        return await daily_uptime(session, days=days, now=now, components=components)


class TestDailyUptime:
    async def test_each_day_is_the_share_of_its_judged_time_spent_up(self, store: Store) -> None:
        # Day one: up 22:00-23:30, down until midnight: 90 of 120 min up.
        # Day two: down until 00:30, degraded (still up) until 01:30: 60 of 90 min up.
        await record(
            store,
            make_sweep(at(DAY_ONE, 22), {"payments": HEALTHY}),
            make_sweep(at(DAY_ONE, 23, 30), {"payments": UNHEALTHY}),
            make_sweep(at(DAY_TWO, 0, 30), {"payments": DEGRADED}),
            make_sweep(at(DAY_TWO, 1, 30), {"payments": HEALTHY}),
            max_gap=GAP,
        )

        found = await bars(store, days=3, now=at(DAY_TWO, 2), components=["payments"])

        assert found == {
            "payments": [
                DailyUptime(day=date(2026, 11, 1), uptime=None),
                DailyUptime(day=date(2026, 11, 2), uptime=75.0),
                DailyUptime(day=date(2026, 11, 3), uptime=66.6667),
            ]
        }

    async def test_time_in_an_unknown_status_is_no_downtime(self, store: Store) -> None:
        # Up for an hour, unknown for an hour: only the hour up is judged.
        await record(
            store,
            make_sweep(at(DAY_ONE, 8), {"search": HEALTHY}),
            make_sweep(at(DAY_ONE, 9), {"search": UNKNOWN}),
            make_sweep(at(DAY_ONE, 10), {"search": HEALTHY}),
            max_gap=GAP,
        )

        found = await bars(store, days=1, now=at(DAY_ONE, 11), components=["search"])

        assert found == {"search": [DailyUptime(day=date(2026, 11, 2), uptime=100.0)]}

    async def test_days_are_utc_days_ending_on_the_day_of_now(self, store: Store) -> None:
        # Up an hour, down half an hour, all of it today in UTC: 60 of 90 min up. ``now``
        # is 01:45 of the next day at UTC+02:00, still day one in UTC.
        await record(
            store,
            make_sweep(at(DAY_ONE, 22), {"payments": HEALTHY}),
            make_sweep(at(DAY_ONE, 23), {"payments": UNHEALTHY}),
            make_sweep(at(DAY_ONE, 23, 30), {"payments": HEALTHY}),
            max_gap=GAP,
        )
        now = at(DAY_ONE, 23, 45).astimezone(timezone(timedelta(hours=2)))

        found = await bars(store, days=2, now=now, components=["payments"])

        assert found["payments"] == [
            DailyUptime(day=date(2026, 11, 1), uptime=None),
            DailyUptime(day=date(2026, 11, 2), uptime=66.6667),
        ]

    async def test_components_asked_for_come_back_in_order_with_empty_days(
        self, store: Store
    ) -> None:
        await record(
            store,
            make_sweep(at(DAY_ONE, 8), {"payments": HEALTHY, "search": HEALTHY}),
            make_sweep(at(DAY_ONE, 9), {"payments": HEALTHY, "search": UNHEALTHY}),
            max_gap=GAP,
        )

        found = await bars(
            store, days=2, now=at(DAY_TWO, 12), components=["search", "never-reported"]
        )

        assert list(found) == ["search", "never-reported"]
        assert [bar.uptime for bar in found["search"]] == [100.0, None]
        assert [bar.uptime for bar in found["never-reported"]] == [None, None]

    async def test_without_components_every_one_with_history_in_the_window(
        self, store: Store
    ) -> None:
        await record(
            store,
            make_sweep(at(DAY_ONE, 8), {"old": HEALTHY}),
            make_sweep(at(DAY_ONE, 9), {"old": HEALTHY}),
            make_sweep(at(DAY_TWO, 8), {"payments": HEALTHY}),
            make_sweep(at(DAY_TWO, 9), {"payments": HEALTHY}),
            max_gap=GAP,
        )

        found = await bars(store, days=1, now=at(DAY_TWO, 10))

        assert set(found) == {"payments", OVERALL}
        assert found["payments"] == [DailyUptime(day=date(2026, 11, 3), uptime=100.0)]

    async def test_a_window_of_no_days_is_refused(self, store: Store) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            await bars(store, days=0, now=DAY_TWO)


class TestPeriodUptime:
    async def test_the_period_sums_the_days_time_rather_than_averaging_their_bars(
        self, store: Store
    ) -> None:
        # The days of the first story: 90 of 120 min up, then 60 of 90. Together 150 of
        # 210 min (71.43%), not the mean of 75% and 66.67%.
        await record(
            store,
            make_sweep(at(DAY_ONE, 22), {"payments": HEALTHY}),
            make_sweep(at(DAY_ONE, 23, 30), {"payments": UNHEALTHY}),
            make_sweep(at(DAY_TWO, 0, 30), {"payments": DEGRADED}),
            make_sweep(at(DAY_TWO, 1, 30), {"payments": HEALTHY}),
            max_gap=GAP,
        )

        async with store.sessions() as session:
            both = await period_uptime(
                session, days=2, now=at(DAY_TWO, 2), components=["payments", "search"]
            )
            today = await period_uptime(session, days=1, now=at(DAY_TWO, 2))

        assert both == {"payments": 71.4286, "search": None}
        assert today["payments"] == 66.6667
