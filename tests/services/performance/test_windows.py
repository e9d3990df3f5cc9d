"""Windows that mean what they say, through the API, with the app's clock frozen.

"The last N hours" is N x 60 minutes ending now, to the minute, compared with the N hours
before it; where the minute rows of an edge are no longer kept (they are rolled up into
hours after ``performance_rollup_after_days``), the edge moves back to its hour and the
answer says so. Requests are stored as minute rows, as the flusher writes them, and rolled
up by the flusher's own maintenance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from watchkeeper_agent.recorder import MinuteBucket

from app.db.models import RequestDay
from app.services.performance import storage
from app.services.performance.flusher import MetricsFlusher
from app.vocabulary.performance import RequestSource, StatusClass
from app.vocabulary.sketch import QuantileSketch

NOW = datetime(2026, 11, 20, 6, 2, tzinfo=UTC)
PERFORMANCE = "/api/v1/maintenance/performance"


def served(at: datetime, requests: int, duration_ms: float = 40.0) -> MinuteBucket:
    """``requests`` answered in the minute starting at ``at``."""
    return MinuteBucket(
        at,
        "shop",
        RequestSource.SELF,
        "/orders",
        "GET",
        StatusClass.SUCCESS,
        QuantileSketch.of([duration_ms] * requests),
        (),
    )


async def store_minutes(app: FastAPI, *buckets: MinuteBucket) -> None:
    async with app.state.store.unit_of_work() as session:
        await storage.write_minutes(session, buckets, process="test")


async def roll_up_as_the_server_would(app: FastAPI) -> None:
    """Hours complete before now become hour rows; minutes older than two days go."""
    await MetricsFlusher(
        app.state.store,
        app.state.request_tracking.recorder,
        flush_seconds=1,
        rollup_after=timedelta(days=app.state.settings.performance_rollup_after_days),
        retention=timedelta(days=400),
        exemplars=5,
        clock=lambda: NOW,
    ).maintain()


async def get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(autouse=True)
def frozen(app: FastAPI) -> None:
    app.state.clock = lambda: NOW


def at(text: str) -> str:
    """An instant as the API writes it."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


class TestTheLastHours:
    async def test_at_06_02_the_last_hour_is_05_02_to_06_02_against_04_02_to_05_02(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        day = "2026-11-20"
        await store_minutes(
            app,
            served(datetime.fromisoformat(f"{day}T04:01+00:00"), 7),  # before both windows
            served(datetime.fromisoformat(f"{day}T04:02+00:00"), 10),
            served(datetime.fromisoformat(f"{day}T05:01+00:00"), 10),
            served(datetime.fromisoformat(f"{day}T05:02+00:00"), 15),
            served(datetime.fromisoformat(f"{day}T06:01+00:00"), 15),
        )

        body = await get(client, f"{PERFORMANCE}/analysis?hours=1", admin_headers)

        assert body["window"] == {
            "start": at(f"{day}T05:02"),
            "end": at(f"{day}T06:02"),
            "hours": 1.0,
            "precision": "minute",
        }
        assert body["previous_window"] == {
            "start": at(f"{day}T04:02"),
            "end": at(f"{day}T05:02"),
            "hours": 1.0,
            "precision": "minute",
        }
        assert body["overall"]["requests"] == 30
        assert body["overall"]["requests_per_minute"] == 0.5
        # 30 requests against the 20 of a whole hour before, not against a partial hour.
        assert body["overall"]["change"]["requests"] == 0.5
        assert body["note"] is None

    async def test_a_window_past_the_minutes_kept_starts_at_its_hour_and_says_so(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        two_days_ago = NOW - timedelta(days=2)
        # 05:59 two days ago is before the start asked for, 06:01 after it, both in the
        # same hour; once rolled up only that hour's row tells them apart from the rest.
        await store_minutes(
            app,
            served(two_days_ago - timedelta(minutes=3), 4),
            served(two_days_ago - timedelta(minutes=1), 6),
            served(NOW - timedelta(minutes=1), 10),
        )
        await roll_up_as_the_server_would(app)

        body = await get(client, f"{PERFORMANCE}/analysis?hours=48", admin_headers)

        window = body["window"]
        assert window["start"] == at("2026-11-18T06:00")
        assert window["precision"] == "hour"
        assert window["hours"] == pytest.approx(48.033, abs=0.001)
        assert body["previous_window"]["end"] == window["start"]
        assert body["previous_window"]["precision"] == "hour"
        # The whole hour of 06:00 two days ago is in, 05:59 is not.
        assert body["overall"]["requests"] == 16
        assert body["note"] == (
            "Minute rows are kept for 2 days (performance_rollup_after_days), so older edges "
            "are whole hours: the window starts at 2026-11-18 06:00 UTC instead of 06:02; "
            "the previous window starts at 2026-11-16 06:00 UTC instead of 06:02."
        )

    async def test_the_same_window_gives_the_same_figures_before_and_after_the_rollup(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        await store_minutes(
            app,
            *(served(NOW - timedelta(minutes=back), 1 + back % 5) for back in range(1, 24 * 60)),
        )
        url = f"{PERFORMANCE}/analysis?hours=12"
        before = await get(client, url, admin_headers)

        await roll_up_as_the_server_would(app)
        after = await get(client, url, admin_headers)

        assert after == before
        assert after["window"]["start"] == at("2026-11-19T18:02")


class TestDays:
    async def test_a_day_ends_now_to_the_minute_and_a_week_starts_at_an_hour(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        day = await get(client, f"{PERFORMANCE}/bottlenecks?days=1", admin_headers)
        week = await get(client, f"{PERFORMANCE}/recommendations?days=7", admin_headers)

        assert day["window"]["start"] == at("2026-11-19T06:02")
        assert day["window"]["end"] == at("2026-11-20T06:02")
        assert day["window"]["precision"] == "minute"
        assert week["window"]["start"] == at("2026-11-13T06:00")
        assert week["window"]["precision"] == "hour"
        assert "the window starts at 2026-11-13 06:00 UTC instead of 06:02" in week["note"]

    async def test_each_weekly_trend_period_is_a_week_the_last_ending_now(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        body = await get(client, f"{PERFORMANCE}/trends?period=week", admin_headers)

        periods = body["overall"]
        assert len(periods) == 8
        assert periods[-1]["end"] == at("2026-11-20T06:02")
        assert [p["start"] for p in periods[1:]] == [p["end"] for p in periods[:-1]]
        assert periods[0]["start"] == at("2026-09-25T06:00")
        assert "8 windows start on the hour before their exact start" in body["note"]

    async def test_the_latency_objective_is_judged_over_the_last_30_days(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        body = await get(client, "/api/v1/maintenance/slo", admin_headers)

        window = next(c for c in body["criteria"] if c["name"] == "response_time")["window"]
        assert window["start"] == at("2026-10-21T06:00")
        assert window["end"] == at("2026-11-20T06:02")
        assert window["precision"] == "hour"


class TestWholeDays:
    """Hours of a complete day are rolled up into a day row, read for every window that
    covers the whole day; hours stored late are counted once at every stage."""

    async def test_a_week_reads_the_same_figures_from_days_as_from_hours(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        await store_minutes(
            app,
            *(
                served(NOW - timedelta(minutes=back), 1 + back % 7, 5.0 + back % 400)
                for back in range(1, 9 * 24 * 60, 17)
            ),
        )
        url = f"{PERFORMANCE}/analysis?hours=96"
        # Past the minutes kept, the window starts at its hour either way.
        async with app.state.store.unit_of_work() as session:
            await storage.roll_up(session, before=NOW, exemplars=5)
        from_hours = await get(client, url, admin_headers)

        await roll_up_as_the_server_would(app)
        from_days = await get(client, url, admin_headers)

        assert await stored_days(app) == {f"2026-11-{day:02d}" for day in range(11, 20)}
        assert from_days == from_hours
        assert from_days["window"]["start"] == at("2026-11-16T06:00")
        assert from_days["overall"]["requests"] > 0

    async def test_an_hour_stored_late_into_a_rolled_up_day_counts_once_at_every_stage(
        self, app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        on_time = [served(datetime(2026, 11, 18, hour, 30, tzinfo=UTC), 10) for hour in range(24)]
        await store_minutes(app, *on_time)
        await roll_up_as_the_server_would(app)
        url = f"{PERFORMANCE}/analysis?hours=72"
        assert (await get(client, url, admin_headers))["overall"]["requests"] == 240

        late = served(datetime(2026, 11, 18, 9, 45, tzinfo=UTC), 5, duration_ms=900.0)
        await store_minutes(app, late)
        as_minute = await get(client, url, admin_headers)
        async with app.state.store.unit_of_work() as session:
            await storage.roll_up(session, before=NOW, exemplars=5)
        as_hour = await get(client, url, admin_headers)
        await roll_up_as_the_server_would(app)
        as_day = await get(client, url, admin_headers)

        for answer in (as_minute, as_hour, as_day):
            assert answer["overall"]["requests"] == 245
            assert answer["overall"]["max_ms"] == pytest.approx(900.0, rel=0.01)
        assert as_hour == as_minute == as_day


async def stored_days(app: FastAPI) -> set[str]:
    """The days the store holds day rows for."""
    async with app.state.store.unit_of_work() as session:
        days = await session.scalars(select(RequestDay.day).distinct())
        return {day.date().isoformat() for day in days}
