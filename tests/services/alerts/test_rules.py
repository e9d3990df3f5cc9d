"""The alert rules as pure functions: crafted histories and a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from app.schemas.alerts import AlertRules, Recurrence
from app.services.alerts.rules.base import Decision, Verdict
from app.services.alerts.rules.component_down import component_down
from app.services.alerts.rules.flapping import flapping
from app.services.alerts.rules.own_network import own_network
from app.services.alerts.rules.sustained import Reading, sustained_above
from app.services.health.windows import Window
from app.vocabulary.health import ComponentStatus

UP, DOWN = ComponentStatus.HEALTHY, ComponentStatus.UNHEALTHY
RULES = AlertRules()
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # a Monday


class TestComponentDown:
    @pytest.mark.parametrize(
        ("history", "decision"),
        [
            ([UP, DOWN, DOWN], Decision.HOLD),
            ([UP, DOWN, DOWN, DOWN], Decision.FIRE),
            ([DOWN, UP, DOWN, DOWN, DOWN], Decision.FIRE),
            ([DOWN, DOWN, UP, DOWN, DOWN], Decision.FIRE),  # 4 of the last 5
            ([DOWN, UP, DOWN, UP, DOWN], Decision.HOLD),
            ([ComponentStatus.DEGRADED] * 5, Decision.HOLD),
        ],
    )
    def test_raising(self, history, decision) -> None:
        assert component_down("api", history, firing=False, rules=RULES).decision is decision

    @pytest.mark.parametrize(
        ("history", "decision"),
        [
            ([DOWN, DOWN, DOWN, UP], Decision.HOLD),
            ([DOWN, DOWN, DOWN, UP, UP], Decision.CLEAR),
            ([DOWN, UP, DOWN, UP, DOWN], Decision.HOLD),
        ],
    )
    def test_clearing_needs_a_run_of_successes(self, history, decision) -> None:
        assert component_down("api", history, firing=True, rules=RULES).decision is decision


class TestFlapping:
    def test_four_flips_in_ten_sweeps_fire_once(self) -> None:
        history = [UP, DOWN, UP, DOWN, UP, UP, UP, UP]

        fired = flapping("api", history, firing=False, rules=RULES)
        again = flapping("api", history, firing=True, rules=RULES)

        assert fired.decision is Decision.FIRE
        assert fired.figures["flips"] == 4
        assert again.decision is Decision.HOLD

    def test_settles_when_flips_stop(self) -> None:
        history = [DOWN, UP, UP, UP, UP, UP, UP, UP, UP, UP]

        assert flapping("api", history, firing=True, rules=RULES).decision is Decision.CLEAR


class TestSustainedAbove:
    def readings(self, values: list[float], step_minutes: float = 1) -> list[Reading]:
        start = NOW - timedelta(minutes=step_minutes * (len(values) - 1))
        return [
            Reading(start + timedelta(minutes=step_minutes * i), v) for i, v in enumerate(values)
        ]

    def check(self, values: list[float], *, firing: bool = False) -> Verdict:
        return sustained_above(
            "disk use",
            self.readings(values),
            threshold=90,
            duration=timedelta(minutes=10),
            now=NOW,
            firing=firing,
            unit="%",
        )

    def test_ten_minutes_above_fire(self) -> None:
        verdict = self.check([95.0] * 11)

        assert verdict.decision is Decision.FIRE
        assert verdict.figures["minimum_in_window"] == 95.0
        assert "for 10 min" in verdict.message

    def test_a_dip_inside_the_window_holds(self) -> None:
        assert self.check([95.0] * 5 + [80.0] + [95.0] * 5).decision is Decision.HOLD

    def test_too_short_a_history_holds(self) -> None:
        assert self.check([95.0] * 4).decision is Decision.HOLD

    def test_clears_when_back_under(self) -> None:
        assert self.check([95.0] * 10 + [70.0], firing=True).decision is Decision.CLEAR


class TestOwnNetwork:
    def test_all_of_three_failing_fire_two_of_three_do_not(self) -> None:
        all_down = {"a": DOWN, "b": DOWN, "c": DOWN}
        some_down = {"a": DOWN, "b": UP, "c": DOWN}

        assert own_network(all_down, firing=False, rules=RULES).decision is Decision.FIRE
        assert own_network(some_down, firing=False, rules=RULES).decision is Decision.HOLD
        assert own_network(some_down, firing=True, rules=RULES).decision is Decision.CLEAR

    def test_two_targets_are_too_few_to_blame_the_network(self) -> None:
        verdict = own_network({"a": DOWN, "b": DOWN}, firing=False, rules=RULES)

        assert verdict.decision is Decision.HOLD


class TestWindows:
    def weekly(self, **fields) -> Window:
        recurrence = Recurrence(weekdays=[0], start=time(23, 0), duration_minutes=120)
        return Window(None, "nightly", None, None, recurrence, (), (), **fields)

    def test_weekly_window_spans_midnight(self) -> None:
        window = self.weekly()
        monday_late = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)
        tuesday_early = datetime(2026, 11, 3, 0, 30, tzinfo=UTC)
        tuesday_late = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)

        assert window.is_open(monday_late)
        assert window.is_open(tuesday_early)
        assert not window.is_open(tuesday_late)

    def test_components_and_rules_narrow_a_window(self) -> None:
        window = Window(
            1,
            "db work",
            NOW - timedelta(hours=1),
            NOW + timedelta(hours=1),
            None,
            ("db",),
            ("component_down",),
        )

        assert window.covers("db", "component_down", NOW)
        assert not window.covers("api", "component_down", NOW)
        assert not window.covers("db", "slow_dependency", NOW)
        assert not window.covers("db", "component_down", NOW + timedelta(hours=2))

    def test_an_ended_window_is_closed(self) -> None:
        assert not self.weekly(ended_at=NOW - timedelta(days=30)).is_open(
            datetime(2026, 11, 2, 23, 30, tzinfo=UTC)
        )
