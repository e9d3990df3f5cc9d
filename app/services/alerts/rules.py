"""Alert rules as pure functions of recent history; ``Verdict`` says fire, clear or hold.

Statuses arrive oldest first. A component fires after ``fail_after`` failing sweeps in a row
or ``fail_threshold`` of the last ``fail_window``, and clears only after ``clear_after``
healthy ones in a row, so a flapping target raises one alert, not one per flip; flapping
itself is a rule of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from app.schemas.alerts import AlertRules
from app.vocabulary.health import ComponentStatus


class Decision(Enum):
    FIRE = "fire"
    CLEAR = "clear"
    HOLD = "hold"  # keep whatever state the alert is in


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


HOLD = Verdict(Decision.HOLD)


def is_failing(status: ComponentStatus) -> bool:
    """Down, for alerting: degraded or unknown alone do not page anyone."""
    return status is ComponentStatus.UNHEALTHY


def component_down(
    name: str, statuses: Sequence[ComponentStatus], *, firing: bool, rules: AlertRules
) -> Verdict:
    """Fires on a run (or a majority) of failures; clears on a run of successes."""
    if not statuses:
        return HOLD
    recent = statuses[-rules.fail_window :]
    failures = sum(is_failing(s) for s in recent)
    run = _trailing(statuses, is_failing)
    figures = {"consecutive_failures": run, "failures": failures, "of_last": len(recent)}
    if not firing:
        if run >= rules.fail_after or failures >= rules.fail_threshold:
            return Verdict(
                Decision.FIRE,
                f"{name} is down: {run} failing sweep(s) in a row, {failures} of the last "
                f"{len(recent)}",
                figures,
            )
        return HOLD
    healthy_run = _trailing(statuses, lambda s: not is_failing(s))
    if healthy_run >= rules.clear_after:
        return Verdict(
            Decision.CLEAR,
            f"{name} recovered: {healthy_run} healthy sweep(s) in a row",
            {**figures, "consecutive_successes": healthy_run},
        )
    return HOLD


def flapping(
    name: str, statuses: Sequence[ComponentStatus], *, firing: bool, rules: AlertRules
) -> Verdict:
    """Fires when the up/down state flips ``flap_changes`` times within ``flap_window``."""
    recent = [is_failing(s) for s in statuses[-rules.flap_window :]]
    flips = sum(1 for a, b in itertools.pairwise(recent) if a != b)
    figures = {"flips": flips, "of_last": len(recent)}
    if flips >= rules.flap_changes and not firing:
        return Verdict(
            Decision.FIRE, f"{name} is flapping: {flips} flips in {len(recent)} sweeps", figures
        )
    if firing and flips < rules.flap_changes // 2:
        return Verdict(Decision.CLEAR, f"{name} settled: {flips} flips", figures)
    return HOLD


@dataclass(frozen=True)
class Sample:
    """A figure measured at a moment (a latency, a CPU percentage)."""

    at: datetime
    value: float


def sustained_above(
    label: str,
    samples: Sequence[Sample],
    *,
    threshold: float,
    duration: timedelta,
    now: datetime,
    firing: bool,
    unit: str,
    statistic: str = "every sample",
) -> Verdict:
    """Fires when every sample over the last ``duration`` exceeds ``threshold``, and the
    samples cover that duration; clears when the latest sample is back under it."""
    if not samples:
        return HOLD
    latest = samples[-1]
    window = [s for s in samples if s.at >= now - duration]
    covered = bool(window) and any(s.at <= now - duration * 0.9 for s in samples)
    figures = {
        "threshold": threshold,
        "latest": round(latest.value, 2),
        "minimum_in_window": round(min(s.value for s in window), 2) if window else None,
        "window_minutes": round(duration.total_seconds() / 60, 1),
        "samples": len(window),
        "unit": unit,
    }
    if not firing and covered and all(s.value > threshold for s in window):
        return Verdict(
            Decision.FIRE,
            f"{label} above {threshold:g} {unit} for {figures['window_minutes']:g} min "
            f"({statistic}; now {latest.value:.1f} {unit})",
            figures,
        )
    if firing and latest.value <= threshold:
        return Verdict(
            Decision.CLEAR, f"{label} back to {latest.value:.1f} {unit} (≤ {threshold:g})", figures
        )
    return HOLD


def own_network(
    http_statuses: dict[str, ComponentStatus], *, firing: bool, rules: AlertRules
) -> Verdict:
    """All of several HTTP targets failing at once points at our own network."""
    if len(http_statuses) < rules.own_network_min_targets:
        return Verdict(Decision.CLEAR) if firing else HOLD
    down = sorted(name for name, status in http_statuses.items() if is_failing(status))
    figures = {"http_targets": len(http_statuses), "failing": down}
    if len(down) == len(http_statuses):
        if firing:
            return HOLD
        return Verdict(
            Decision.FIRE,
            f"all {len(down)} HTTP targets failed in the same sweep: the monitor's own "
            "network is suspected",
            figures,
        )
    if firing:
        return Verdict(
            Decision.CLEAR, f"{len(http_statuses) - len(down)} HTTP target(s) answer again", figures
        )
    return HOLD


def _trailing(statuses: Sequence[ComponentStatus], predicate: Any) -> int:
    count = 0
    for status in reversed(statuses):
        if not predicate(status):
            break
        count += 1
    return count
