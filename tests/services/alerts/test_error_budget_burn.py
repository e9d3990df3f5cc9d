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


async def one_bad_sweep_in_fifty(store: Store) -> None:
    """A sweep a minute for the last 50 minutes, the one a minute ago unhealthy: 2% of the
    hour (and of six), 1 in 6 of the last 5 minutes, 1 in 31 of the last 30."""
    async with store.unit_of_work() as session:
        for minutes_ago in range(50):
            status = ComponentStatus.UNHEALTHY if minutes_ago == 1 else ComponentStatus.HEALTHY
            session.add(
                HealthSweep(
                    source="test",
                    started_at=NOW - timedelta(minutes=minutes_ago),
                    duration_ms=1.0,
                    status=status,
                )
            )


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
    async def test_two_percent_unhealthy_burns_a_99_9_budget_twenty_times_too_fast(
        self, store: Store, settings: Settings
    ) -> None:
        await one_bad_sweep_in_fifty(store)

        burning = await burning_after_evaluation(store, settings)

        assert set(burning) == {"availability:60m/5m", "availability:360m/30m"}
        fast = burning["availability:60m/5m"]
        assert fast.severity == "critical"
        assert fast.figures["budget"] == pytest.approx(0.001)
        assert fast.figures["burn_rate_60m"] == pytest.approx(20.0)

    async def test_the_same_sweeps_burn_a_99_5_objective_only_four_times_too_fast(
        self, store: Store, settings: Settings
    ) -> None:
        await one_bad_sweep_in_fifty(store)
        looser = settings.model_copy(update={"objectives": Objectives(availability_percent=99.5)})

        # 2% of a 0.5% budget is a 4x burn: under both pairs' rates (14.4x and 6x).
        assert await burning_after_evaluation(store, looser) == {}
