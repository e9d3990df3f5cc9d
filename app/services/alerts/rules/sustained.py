"""A figure held over a threshold for a while: the judgement behind the slow-dependency
and the resource rules, so one slow check or one busy second pages nobody."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.services.alerts.rules.base import HOLD, Decision, Verdict


@dataclass(frozen=True)
class Reading:
    """A figure measured at a moment (a check's latency, a CPU percentage)."""

    at: datetime
    value: float


def sustained_above(
    label: str,
    readings: Sequence[Reading],
    *,
    threshold: float,
    duration: timedelta,
    now: datetime,
    firing: bool,
    unit: str,
) -> Verdict:
    """Fires when every reading over the last ``duration`` exceeds ``threshold``, and the
    readings cover that duration; clears when the latest reading is back under it."""
    if not readings:
        return HOLD
    latest = readings[-1]
    window = [s for s in readings if s.at >= now - duration]
    covered = bool(window) and any(s.at <= now - duration * 0.9 for s in readings)
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
            f"(every sample; now {latest.value:.1f} {unit})",
            figures,
        )
    if firing and latest.value <= threshold:
        return Verdict(
            Decision.CLEAR, f"{label} back to {latest.value:.1f} {unit} (≤ {threshold:g})", figures
        )
    return HOLD
