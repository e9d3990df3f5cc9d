"""The availability burn alert measured against the objectives: crafted sweeps in the
store, one evaluation at a frozen moment, and the budget ``settings.objectives`` sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.db.models import Alert, HealthSweep
from app.db.store import Store
from app.schemas.health import Sweep
from app.schemas.objectives import Objectives
from app.services.alerts.engine import AlertEngine
from app.vocabulary.health import ComponentStatus

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = Store(store_url)
    yield store
    await store.dispose()


async def sweeps(store: Store, *, total: int, unhealthy: range) -> None:
    """A sweep a minute for the last ``total`` minutes, those ``unhealthy`` minutes ago bad."""
    async with store.unit_of_work() as session:
        for minutes_ago in range(total):
            bad = minutes_ago in unhealthy
            session.add(
                HealthSweep(
                    source="test",
                    started_at=NOW - timedelta(minutes=minutes_ago),
                    duration_ms=1.0,
                    status=ComponentStatus.UNHEALTHY if bad else ComponentStatus.HEALTHY,
                )
            )


async def an_outage_of_three_sweeps_in_fifty(store: Store) -> None:
    """Three unhealthy sweeps in a row (``fail_after``) in the last 50 minutes: 6% of the
    hour and of six, 3 in 6 of the last 5 minutes, 3 in 31 of the last 30."""
    await sweeps(store, total=50, unhealthy=range(1, 4))


async def burning_after_evaluation(store: Store, settings: Settings) -> dict[str, Alert]:
    """The error-budget alerts firing once the engine has judged the sweep taken at NOW."""
    engine = AlertEngine.from_settings(settings)
    sweep = Sweep(
        status=ComponentStatus.HEALTHY, checked_at=NOW, duration_ms=1.0, components=[], system=None
    )
    async with store.unit_of_work() as session:
        await engine(session, sweep)
    async with store.unit_of_work() as session:
        alerts = await session.scalars(select(Alert).where(Alert.rule == "error_budget_burn"))
        return {alert.component: alert for alert in alerts}


class TestAvailabilityBudget:
    async def test_six_percent_unhealthy_burns_a_99_9_budget_sixty_times_too_fast(
        self, store: Store, settings: Settings
    ) -> None:
        await an_outage_of_three_sweeps_in_fifty(store)

        burning = await burning_after_evaluation(store, settings)

        assert set(burning) == {"availability:60m/5m", "availability:360m/30m"}
        fast = burning["availability:60m/5m"]
        assert fast.severity == "critical"
        assert fast.figures["budget"] == pytest.approx(0.001)
        assert fast.figures["burn_rate_60m"] == pytest.approx(60.0)

    async def test_the_same_sweeps_burn_a_99_5_objective_only_twelve_times_too_fast(
        self, store: Store, settings: Settings
    ) -> None:
        await sweeps(store, total=200, unhealthy=range(1, 4))
        looser = settings.model_copy(update={"objectives": Objectives(availability_percent=99.5)})

        # 5% of the hour on a 0.5% budget is 10x (under 14.4x); 1.5% of six hours is 3x
        # (under 6x): neither pair burns.
        assert await burning_after_evaluation(store, looser) == {}

    async def test_one_unhealthy_sweep_never_pages_before_fail_after(
        self, store: Store, settings: Settings
    ) -> None:
        # One bad sweep of 50 is a 20x burn of a 99.9% budget on paper; a single sweep is
        # the component rules' business, which wait for fail_after (3) in a row.
        await sweeps(store, total=50, unhealthy=range(1, 2))

        assert await burning_after_evaluation(store, settings) == {}
