"""Host and dependency bottlenecks from the health history: saturation, growth, slow checks.

* Resource: CPU, memory or disk above its threshold in every sweep for at least
  ``sustained`` (a silence longer than ``max_gap`` breaks the run: no data is not load).
* Capacity: a least-squares line through disk or memory use; when it rises with a fit
  good enough to trust (r² ≥ ``capacity_min_fit``) and reaches 100% within
  ``capacity_days``.
* Dependency: a component whose check latency p95, merged from its hourly sketches, is
  above the threshold.

Every limit is a field of :class:`Thresholds`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import HealthHour, HealthSweep
from app.db.models.health import OVERALL
from app.schemas.performance import (
    Bottleneck,
    CapacityEvidence,
    CapacityExhaustion,
    DependencyEvidence,
    ResourceEvidence,
    ResourceSaturation,
    Severity,
    SlowDependency,
)
from app.services.performance.detectors import severity_of
from app.services.performance.thresholds import Thresholds
from app.vocabulary.health import ComponentKind
from app.vocabulary.sketch import from_many_bytes

RESOURCES: Final = ("cpu", "memory", "disk")
GROWING: Final = ("disk", "memory")
# A saturated resource is critical from this mean on: at 98% there is no headroom left.
CRITICAL_PERCENT: Final = 98.0


@dataclass(frozen=True)
class HostSample:
    """One sweep's host figures (percent)."""

    at: datetime
    cpu: float | None
    memory: float | None
    disk: float | None


async def read_host_samples(
    session: AsyncSession, since: datetime, until: datetime
) -> list[HostSample]:
    """The host figures of every sweep in ``[since, until)``, oldest first."""
    rows = await session.execute(
        select(
            HealthSweep.started_at,
            HealthSweep.cpu_percent,
            HealthSweep.memory_percent,
            HealthSweep.disk_percent,
        )
        .where(HealthSweep.started_at >= since, HealthSweep.started_at < until)
        .order_by(HealthSweep.started_at)
    )
    return [HostSample(*row) for row in rows]


def _threshold(thresholds: Thresholds, resource: str) -> float:
    return float(getattr(thresholds, f"{resource}_percent"))


def saturation(samples: Sequence[HostSample], thresholds: Thresholds) -> list[Bottleneck]:
    """Each resource's longest run above its threshold, when it lasted ``sustained``."""
    found: list[Bottleneck] = []
    for resource in RESOURCES:
        limit = _threshold(thresholds, resource)
        best: list[tuple[datetime, float]] = []
        run: list[tuple[datetime, float]] = []
        for sample in samples:
            value = getattr(sample, resource)
            if run and (
                value is None or value <= limit or sample.at - run[-1][0] > thresholds.max_gap
            ):
                best = max(best, run, key=_length)
                run = []
            if value is not None and value > limit:
                run.append((sample.at, value))
        best = max(best, run, key=_length)
        if best and _length(best) >= thresholds.sustained:
            values = [value for _, value in best]
            mean = sum(values) / len(values)
            minutes = _length(best).total_seconds() / 60
            found.append(
                ResourceSaturation(
                    severity=Severity.CRITICAL if mean >= CRITICAL_PERCENT else Severity.HIGH,
                    target=resource,
                    metric=f"{resource}_percent",
                    value=round(mean, 2),
                    threshold=limit,
                    message=(
                        f"{resource} at {mean:.1f}% on average (peak {max(values):.1f}%) for "
                        f"{minutes:.0f} minutes from {best[0][0]:%Y-%m-%d %H:%M} UTC "
                        f"(threshold {limit:.0f}% held {thresholds.sustained} or longer)"
                    ),
                    evidence=ResourceEvidence(
                        resource=resource,
                        mean_percent=round(mean, 2),
                        peak_percent=round(max(values), 2),
                        minutes=round(minutes, 1),
                        samples=len(values),
                        started_at=best[0][0],
                        ended_at=best[-1][0],
                    ),
                )
            )
    return found


def _length(run: Sequence[tuple[datetime, float]]) -> timedelta:
    return run[-1][0] - run[0][0] if run else timedelta(0)


def exhaustion(samples: Sequence[HostSample], thresholds: Thresholds) -> list[Bottleneck]:
    """Disk or memory whose fitted growth reaches 100% within ``capacity_days``."""
    found: list[Bottleneck] = []
    for resource in GROWING:
        points = [(s.at, getattr(s, resource)) for s in samples if getattr(s, resource) is not None]
        if (
            len(points) < thresholds.capacity_min_samples
            or points[-1][0] - points[0][0] < thresholds.capacity_min_span
        ):
            continue
        origin = points[0][0]
        days = np.array([(at - origin).total_seconds() / 86_400 for at, _ in points])
        used = np.array([value for _, value in points])
        slope, intercept = np.polyfit(days, used, 1)
        fitted = slope * days + intercept
        spread = float(((used - used.mean()) ** 2).sum())
        r_squared = 1 - float(((used - fitted) ** 2).sum()) / spread if spread else 0.0
        if slope <= 0 or r_squared < thresholds.capacity_min_fit:
            continue
        now_percent = float(fitted[-1])
        days_left = max((100.0 - now_percent) / float(slope), 0.0)
        if days_left > thresholds.capacity_days:
            continue
        full_at = points[-1][0] + timedelta(days=days_left)
        found.append(
            CapacityExhaustion(
                # Fewer days left is worse: the threshold over the value grades it.
                severity=severity_of(thresholds.capacity_days / max(days_left, 0.1) / 2.5),
                target=resource,
                metric="days_to_full",
                value=round(days_left, 2),
                threshold=thresholds.capacity_days,
                message=(
                    f"{resource} use grows {slope:.2f} points a day (now {now_percent:.1f}%, "
                    f"r² {r_squared:.2f}): full in {days_left:.1f} days, around {full_at:%Y-%m-%d}"
                ),
                evidence=CapacityEvidence(
                    resource=resource,
                    percent_now=round(now_percent, 2),
                    growth_per_day=round(float(slope), 4),
                    r_squared=round(r_squared, 3),
                    days_to_full=round(days_left, 2),
                    full_at=full_at,
                    samples=len(points),
                ),
            )
        )
    return found


async def slow_dependencies(
    session: AsyncSession, since: datetime, until: datetime, thresholds: Thresholds
) -> list[Bottleneck]:
    """Components whose check latency p95 over ``[since, until)`` exceeds the threshold."""
    rows = await session.execute(
        select(
            HealthHour.component,
            HealthHour.kind,
            HealthHour.latency_sketch,
            HealthHour.latency_sum_ms,
            HealthHour.latency_count,
            HealthHour.checks,
            HealthHour.failures,
        ).where(
            HealthHour.hour >= since,
            HealthHour.hour < until,
            HealthHour.component != OVERALL,
            HealthHour.kind != ComponentKind.SYSTEM,
        )
    )
    grouped: dict[tuple[str, str], list[tuple[bytes, float, int, int, int]]] = defaultdict(list)
    for component, kind, sketch, total, count, checks, failures in rows:
        grouped[component, kind].append((sketch, total, count, checks, failures))
    found: list[Bottleneck] = []
    for (component, kind), hours in sorted(grouped.items()):
        count = sum(h[2] for h in hours)
        if count < thresholds.dependency_min_checks:
            continue
        p95 = from_many_bytes([h[0] for h in hours if h[0]]).quantile(0.95)
        if p95 is None or p95 <= thresholds.slow_dependency_ms:
            continue
        avg = sum(h[1] for h in hours) / count
        found.append(
            SlowDependency(
                severity=severity_of(p95 / thresholds.slow_dependency_ms),
                target=component,
                metric="latency_p95_ms",
                value=round(p95, 2),
                threshold=thresholds.slow_dependency_ms,
                message=(
                    f"{component} ({kind}) answers its checks in {p95:.0f} ms at p95 "
                    f"(average {avg:.0f} ms over {count} checks; threshold "
                    f"{thresholds.slow_dependency_ms:.0f} ms)"
                ),
                evidence=DependencyEvidence(
                    component=component,
                    kind=kind,
                    latency_p95_ms=round(p95, 2),
                    latency_avg_ms=round(avg, 2),
                    checks=sum(h[3] for h in hours),
                    failures=sum(h[4] for h in hours),
                ),
            )
        )
    return found
