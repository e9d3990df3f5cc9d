"""Reading health history: uptime, latency, failures, changes, incidents and the direction.

Figures come from the hourly rows (see ``health_history``), plus the stretch since each
component's last report, which no row holds yet. The window is the last ``hours`` whole
hours up to now, the current hour included as far as it has gone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.hours import HOUR, hour_floor, split_by_hour
from app.db.models import ComponentState, HealthHour, HealthIncident
from app.db.models.health import OVERALL
from app.schemas.health import ComponentTrend, HealthTrend, Incident
from app.services.health.history import InMaintenance
from app.vocabulary.health import ComponentStatus
from app.vocabulary.sketch import from_many_bytes

_SUMMED = (
    "healthy_s",
    "degraded_s",
    "unhealthy_s",
    "unknown_s",
    "maintenance_s",
    "checks",
    "failures",
    "status_changes",
    "latency_sum_ms",
    "latency_count",
)
# A change smaller than these is noise, not a direction.
UPTIME_STEP_POINTS = 0.1
LATENCY_STEP_RATIO = 0.2


@dataclass
class Tally:
    """Sums over some hours of one component."""

    seconds: dict[ComponentStatus, float] = field(
        default_factory=lambda: dict.fromkeys(ComponentStatus, 0.0)
    )
    maintenance_s: float = 0.0
    checks: int = 0
    failures: int = 0
    status_changes: int = 0
    latency_sum_ms: float = 0.0
    latency_count: int = 0
    sketches: list[bytes] = field(default_factory=list)

    def add_sums(self, row: Row[Any]) -> None:
        """Adds one row of ``_SUMMED`` sums over hours."""
        self.seconds[ComponentStatus.HEALTHY] += row.healthy_s
        self.seconds[ComponentStatus.DEGRADED] += row.degraded_s
        self.seconds[ComponentStatus.UNHEALTHY] += row.unhealthy_s
        self.seconds[ComponentStatus.UNKNOWN] += row.unknown_s
        self.maintenance_s += row.maintenance_s
        self.checks += row.checks
        self.failures += row.failures
        self.status_changes += row.status_changes
        self.latency_sum_ms += row.latency_sum_ms
        self.latency_count += row.latency_count

    @property
    def uptime_percent(self) -> float | None:
        up = self.seconds[ComponentStatus.HEALTHY] + self.seconds[ComponentStatus.DEGRADED]
        judged = up + self.seconds[ComponentStatus.UNHEALTHY]
        return round(100.0 * up / judged, 4) if judged else None

    def latency_p95(self) -> float | None:
        if not self.sketches:
            return None
        p95 = from_many_bytes(self.sketches).quantile(0.95)
        return None if p95 is None else round(p95, 2)


def direction(first: Tally, second: Tally) -> tuple[str, str]:
    """Improving, stable or degrading: the second half of the window against the first."""
    before, after = first.uptime_percent, second.uptime_percent
    if before is not None and after is not None and abs(after - before) >= UPTIME_STEP_POINTS:
        verdict = "improving" if after > before else "degrading"
        return verdict, f"uptime {before:.2f}% → {after:.2f}% between the window's halves"
    slow_before, slow_after = first.latency_p95(), second.latency_p95()
    if slow_before and slow_after and abs(slow_after / slow_before - 1) >= LATENCY_STEP_RATIO:
        verdict = "improving" if slow_after < slow_before else "degrading"
        return verdict, f"latency p95 {slow_before:.0f} ms → {slow_after:.0f} ms"
    if before is None or after is None:
        return "stable", "not enough history in both halves of the window to tell"
    return "stable", "uptime and latency p95 within noise between the window's halves"


class HealthTrendQuery:
    """The trend over the last ``hours`` hours, as of ``now``."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        hours: int,
        now: datetime,
        max_gap: timedelta,
        in_maintenance: InMaintenance = lambda _component, _at: False,
    ) -> None:
        self.session = session
        self.in_maintenance = in_maintenance
        self.hours = hours
        self.now = now
        self.max_gap = max_gap
        self.start = hour_floor(now) - (hours - 1) * HOUR
        self.middle = self.start + (now - self.start) / 2

    async def compute(self) -> HealthTrend:
        """The window's figures, overall and per component."""
        whole: dict[str, Tally] = defaultdict(Tally)
        halves: dict[str, tuple[Tally, Tally]] = defaultdict(lambda: (Tally(), Tally()))
        kinds: dict[str, str] = {}
        # The store sums the hours (a month of 20 targets is ~16,000 rows, too many to load
        # as objects within a request); only the latency sketches come back one per hour.
        in_window = (HealthHour.hour >= self.start, HealthHour.hour <= self.now)
        half = case((HealthHour.hour < hour_floor(self.middle), 0), else_=1).label("half")
        sums = await self.session.execute(
            select(
                HealthHour.component,
                half,
                func.max(HealthHour.kind).label("kind"),
                *(func.sum(getattr(HealthHour, column)).label(column) for column in _SUMMED),
            )
            .where(*in_window)
            .group_by(HealthHour.component, half)
        )
        for row in sums:
            kinds[row.component] = row.kind
            whole[row.component].add_sums(row)
            halves[row.component][row.half].add_sums(row)
        sketches = await self.session.execute(
            select(HealthHour.component, half, HealthHour.latency_sketch).where(
                *in_window, HealthHour.latency_count > 0
            )
        )
        for component, part, sketch in sketches:
            whole[component].sketches.append(sketch)
            halves[component][part].sketches.append(sketch)
        for state in await self.session.scalars(select(ComponentState)):
            kinds[state.component] = state.kind
            self._add_running(whole[state.component], state)
            self._add_running(halves[state.component][1], state)
        incidents = await self._incidents()
        trends = {
            name: self._trend(name, kinds.get(name), tally, incidents.get(name, []))
            for name, tally in whole.items()
        }
        overall = trends.pop(OVERALL, None) or self._trend(OVERALL, None, Tally(), [])
        # The overall status carries no latency of its own: its halves take every
        # component's latency sketches, so a slowdown shows in the direction too.
        first, second = halves[OVERALL]
        for name, (early, late) in list(halves.items()):
            if name != OVERALL:
                first.sketches.extend(early.sketches)
                second.sketches.extend(late.sketches)
        verdict, reason = direction(first, second)
        return HealthTrend(
            hours=self.hours,
            window_start=self.start,
            window_end=self.now,
            uptime_percent=overall.uptime_percent,
            direction=verdict,
            direction_reason=reason,
            overall=overall,
            components=sorted(trends.values(), key=lambda t: t.name),
        )

    def _add_running(self, tally: Tally, state: ComponentState) -> None:
        """The time since the last report, still in its status (up to the gap allowed)."""
        end = min(self.now, state.last_checked_at + self.max_gap)
        begin = max(state.last_checked_at, self.start)
        seconds = sum(s for _, s in split_by_hour(begin, end))
        if self.in_maintenance(state.component, state.last_checked_at):
            tally.maintenance_s += seconds
        else:
            tally.seconds[state.status] += seconds

    async def _incidents(self) -> dict[str, list[Incident]]:
        rows = await self.session.scalars(
            select(HealthIncident)
            .where(
                HealthIncident.started_at <= self.now,
                or_(HealthIncident.ended_at.is_(None), HealthIncident.ended_at >= self.start),
            )
            .order_by(HealthIncident.started_at)
        )
        found: dict[str, list[Incident]] = defaultdict(list)
        for row in rows:
            until = row.ended_at or self.now
            found[row.component].append(
                Incident(
                    component=row.component,
                    started_at=row.started_at,
                    ended_at=row.ended_at,
                    duration_s=round((until - row.started_at).total_seconds(), 1),
                    message=row.message,
                )
            )
        return found

    def _trend(
        self, name: str, kind: str | None, tally: Tally, incidents: Sequence[Incident]
    ) -> ComponentTrend:
        window_s = (self.now - self.start).total_seconds()
        seen = sum(tally.seconds.values()) + tally.maintenance_s
        return ComponentTrend(
            name=name,
            kind=kind,
            uptime_percent=tally.uptime_percent,
            healthy_s=round(tally.seconds[ComponentStatus.HEALTHY], 1),
            degraded_s=round(tally.seconds[ComponentStatus.DEGRADED], 1),
            unhealthy_s=round(tally.seconds[ComponentStatus.UNHEALTHY], 1),
            unknown_s=round(tally.seconds[ComponentStatus.UNKNOWN], 1),
            maintenance_s=round(tally.maintenance_s, 1),
            no_data_s=round(max(window_s - seen, 0.0), 1),
            checks=tally.checks,
            failures=tally.failures,
            status_changes=tally.status_changes,
            latency_avg_ms=(
                round(tally.latency_sum_ms / tally.latency_count, 2)
                if tally.latency_count
                else None
            ),
            latency_p95_ms=tally.latency_p95(),
            incidents=list(incidents),
        )
