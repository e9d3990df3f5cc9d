"""What counts as a bottleneck: one typed set of thresholds, built from the settings.

The objectives (availability, latency, resolution, improvement) are not here: they are
``settings.objectives``, the targets ``/slo`` reports. These are the lines past which a
measured figure becomes a bottleneck. The operator's knobs are settings
(``performance_*``, and the alert rules' CPU, memory and disk limits, shared so that an
alert and a bottleneck judge the same thing); the few constants below are statistical
guards that keep the rules from reading noise, not policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from app.core.config import Settings

# A 5xx share that rises from (almost) zero must rise by at least one point to count as a
# regression: a ratio against a zero baseline means nothing.
MIN_ERROR_STEP: Final = 0.01
# Below this p99 a long tail costs too little to be worth moving work off the request.
MIN_TAIL_P99_MS: Final = 100.0
# A growth line is trusted from this fit (r²), this many sweeps and this span of time on;
# fewer or shorter, and a daily cycle looks like a trend.
MIN_FIT: Final = 0.5
MIN_GROWTH_SAMPLES: Final = 10
MIN_GROWTH_SPAN: Final = timedelta(hours=6)
# A dependency's p95 needs this many checks to mean anything.
MIN_CHECKS: Final = 10


@dataclass(frozen=True)
class Thresholds:
    """The bottleneck rules' limits; :meth:`from_settings` is the one place they are set."""

    slow_endpoint_ms: float
    error_rate: float
    slow_dependency_ms: float
    cpu_percent: float
    memory_percent: float
    disk_percent: float
    sustained: timedelta
    max_gap: timedelta
    min_requests: int
    regression_ratio: float
    regression_significance: float
    regression_min_error_step: float
    variance_ratio: float
    variance_min_p99_ms: float
    capacity_days: float
    capacity_min_fit: float
    capacity_min_samples: int
    capacity_min_span: timedelta
    dependency_min_checks: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """The configured thresholds, with the statistical guards of this module."""
        rules = settings.alert_rules
        return cls(
            slow_endpoint_ms=settings.performance_slow_endpoint_ms,
            error_rate=settings.performance_error_rate,
            slow_dependency_ms=settings.performance_slow_dependency_ms,
            cpu_percent=rules.cpu_percent,
            memory_percent=rules.memory_percent,
            disk_percent=rules.disk_percent,
            sustained=timedelta(minutes=rules.resource_minutes),
            # One missed sweep is tolerated; two in a row are a silence, not load.
            max_gap=timedelta(seconds=2 * settings.monitor_interval_seconds),
            min_requests=settings.performance_min_requests,
            regression_ratio=settings.performance_regression_ratio,
            regression_significance=settings.performance_regression_significance,
            regression_min_error_step=MIN_ERROR_STEP,
            variance_ratio=settings.performance_variance_ratio,
            variance_min_p99_ms=MIN_TAIL_P99_MS,
            capacity_days=settings.performance_capacity_days,
            capacity_min_fit=MIN_FIT,
            capacity_min_samples=MIN_GROWTH_SAMPLES,
            capacity_min_span=MIN_GROWTH_SPAN,
            dependency_min_checks=MIN_CHECKS,
        )
