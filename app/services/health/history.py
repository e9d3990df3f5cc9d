"""Writing health history: a sweep's results, and the time-weighted accounting behind uptime.

When a component reports at ``t``, the time since its previous report is credited to the
previous status, split over the hours it spans, capped at ``max_gap`` (a longer silence is
"no data", not uptime). The hourly rows then answer uptime for any window without reading
raw results, and incidents (unhealthy runs) are opened and closed as the status changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.hours import hour_floor, split_by_hour
from app.db.models import ComponentState, HealthHour, HealthIncident, HealthResult, HealthSweep
from app.db.models.health import OVERALL
from app.schemas.health import Sweep
from app.services.health import days
from app.vocabulary.health import ComponentKind, ComponentStatus, worst_status
from app.vocabulary.sketch import QuantileSketch

# Whether a component is under a maintenance window at a moment.
InMaintenance = Callable[[str, datetime], bool]
DELETE_BATCH = 5000


@dataclass(frozen=True)
class Observation:
    """One component's status at one moment, as the accounting sees it."""

    component: str
    kind: str
    status: ComponentStatus
    at: datetime
    latency_ms: float | None
    message: str


def observations(
    sweep: Sweep, in_maintenance: InMaintenance = lambda _component, _at: False
) -> list[Observation]:
    """Each component's result, plus the overall status as its own component (see
    ``overall_observation``)."""
    found = [
        Observation(r.name, r.kind, r.status, r.checked_at, r.latency_ms, r.message)
        for r in sweep.components
    ]
    return [*found, overall_observation(found, sweep.checked_at, sweep.status, in_maintenance)]


def overall_observation(
    found: Sequence[Observation],
    at: datetime,
    sweep_status: ComponentStatus,
    in_maintenance: InMaintenance,
) -> Observation:
    """A sweep's overall status: the worst of its components not under maintenance (a
    planned outage is not the service's downtime), the sweep's own when all of them are."""
    counted = [o.status for o in found if not in_maintenance(o.component, o.at)]
    status = worst_status(counted) if counted else sweep_status
    return Observation(OVERALL, ComponentKind.SYSTEM, status, at, None, status.value)


def credited_until(last_report: datetime, next_report: datetime, max_gap: timedelta) -> datetime:
    """Until when a report's status is believed: the next report, at most ``max_gap`` on
    (a longer silence is no data)."""
    return min(next_report, last_report + max_gap)


SECONDS_COLUMN = {
    ComponentStatus.HEALTHY: "healthy_s",
    ComponentStatus.DEGRADED: "degraded_s",
    ComponentStatus.UNHEALTHY: "unhealthy_s",
    ComponentStatus.UNKNOWN: "unknown_s",
}


class HealthLedger:
    """Applies observations to the running state, hourly rows and incidents of one session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        max_gap: timedelta,
        in_maintenance: InMaintenance = lambda _component, _at: False,
    ) -> None:
        self.session = session
        self.max_gap = max_gap
        self.in_maintenance = in_maintenance
        self._hours: dict[tuple[str, datetime], HealthHour] = {}

    async def record(
        self, sweep: Sweep, *, source: str, sweep_row: HealthSweep | None
    ) -> HealthSweep:
        """Stores a sweep (into its claimed row, if any) with its results and accounting."""
        row = sweep_row or HealthSweep(source=source)
        row.started_at = sweep.checked_at
        row.duration_ms = sweep.duration_ms
        row.status = sweep.status
        if sweep.system is not None:
            row.cpu_percent = sweep.system.cpu_percent
            row.memory_percent = sweep.system.memory_percent
            row.disk_percent = sweep.system.disk_percent
            row.load_1m = sweep.system.load_average[0]
        self.session.add(row)
        await self.session.flush()
        self.session.add_all(
            HealthResult(
                sweep_id=row.id,
                component=r.name,
                kind=r.kind,
                status=r.status,
                latency_ms=r.latency_ms,
                message=r.message,
                details=r.details,
                checked_at=r.checked_at,
            )
            for r in sweep.components
        )
        for observation in observations(sweep, self.in_maintenance):
            await self.observe(observation)
        await self.session.flush()
        return row

    async def observe(self, seen: Observation) -> None:
        """Credits the time since the component's last report and moves its state on."""
        state, first = await self._state_of(seen)
        if not first and seen.at < state.last_checked_at:
            return  # a late, out-of-order result: kept raw, but history has moved past it
        hour = await self._hour(seen.component, seen.kind, hour_floor(seen.at))
        hour.checks += 1
        hour.failures += seen.status is ComponentStatus.UNHEALTHY
        if seen.latency_ms is not None:
            hour.latency_sum_ms += seen.latency_ms
            hour.latency_count += 1
            sketch = (
                QuantileSketch.from_bytes(hour.latency_sketch)
                if hour.latency_sketch
                else QuantileSketch()
            )
            sketch.add(seen.latency_ms)
            hour.latency_sketch = sketch.to_bytes()
        if first:
            if seen.status is ComponentStatus.UNHEALTHY:
                self._open_incident(seen)
            return
        await self._credit(state, until=seen.at)
        if seen.status is not state.status:
            hour.status_changes += 1
            if seen.status is ComponentStatus.UNHEALTHY:
                self._open_incident(seen)
            elif state.status is ComponentStatus.UNHEALTHY:
                await self._close_incident(seen.component, seen.at)
            state.status, state.since = seen.status, seen.at
        state.kind = seen.kind
        state.last_checked_at = seen.at
        state.last_latency_ms = seen.latency_ms
        state.last_message = seen.message

    async def _state_of(self, seen: Observation) -> tuple[ComponentState, bool]:
        """The component's state, locked, and whether ``seen`` created it (its first report).

        Two processes may see a component for the first time at once: the row is created
        with an upsert that leaves one made meanwhile in place, and the loser's report is
        then applied to that row like any later report.
        """
        query = (
            select(ComponentState)
            .where(ComponentState.component == seen.component)
            .with_for_update()
        )
        state = await self.session.scalar(query)
        if state is not None:
            return state, False
        # Each store's own INSERT, the one that takes ON CONFLICT.
        insert: postgresql.Insert | sqlite.Insert = (
            postgresql.insert(ComponentState)
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert(ComponentState)
        )
        create = (
            insert.values(
                component=seen.component,
                kind=seen.kind,
                status=seen.status,
                since=seen.at,
                last_checked_at=seen.at,
                last_latency_ms=seen.latency_ms,
                last_message=seen.message,
            )
            .on_conflict_do_nothing(index_elements=[ComponentState.component])
            .returning(ComponentState.component)
        )
        created = await self.session.scalar(create) is not None
        state = await self.session.scalar(query)
        assert state is not None  # created now, or by the other process
        return state, created

    async def _credit(self, state: ComponentState, *, until: datetime) -> None:
        end = credited_until(state.last_checked_at, until, self.max_gap)
        column = SECONDS_COLUMN[state.status]
        if self.in_maintenance(state.component, state.last_checked_at):
            column = "maintenance_s"  # planned: kept out of uptime
        for hour_start, seconds in split_by_hour(state.last_checked_at, end):
            hour = await self._hour(state.component, state.kind, hour_start)
            setattr(hour, column, getattr(hour, column) + seconds)

    async def _hour(self, component: str, kind: str, start: datetime) -> HealthHour:
        key = (component, start)
        if key not in self._hours:
            # Locked, so a rollup under way either has this hour already (and it is seen
            # rolled up here) or waits for this change before it claims it.
            found = await self.session.scalar(
                select(HealthHour)
                .where(HealthHour.component == component, HealthHour.hour == start)
                .with_for_update()
            )
            if found is not None and found.rolled_up:
                await days.reopen(self.session, component, start)
            if found is None:
                found = HealthHour(
                    component=component,
                    kind=kind,
                    hour=start,
                    healthy_s=0.0,
                    degraded_s=0.0,
                    unhealthy_s=0.0,
                    unknown_s=0.0,
                    maintenance_s=0.0,
                    checks=0,
                    failures=0,
                    status_changes=0,
                    latency_sum_ms=0.0,
                    latency_count=0,
                    latency_sketch=b"",
                    rolled_up=False,
                )
                self.session.add(found)
            self._hours[key] = found
        return self._hours[key]

    def _open_incident(self, seen: Observation) -> None:
        self.session.add(
            HealthIncident(
                component=seen.component, kind=seen.kind, started_at=seen.at, message=seen.message
            )
        )

    async def _close_incident(self, component: str, at: datetime) -> None:
        incident = await self.session.scalar(
            select(HealthIncident)
            .where(HealthIncident.component == component, HealthIncident.ended_at.is_(None))
            .order_by(HealthIncident.started_at.desc())
            .limit(1)
        )
        if incident is not None:
            incident.ended_at = at


async def prune(session: AsyncSession, *, raw_before: datetime, rollups_before: datetime) -> int:
    """Deletes one batch of expired sweeps (results go with them) and old hours and days."""
    expired = (
        select(HealthSweep.id)
        .where(HealthSweep.started_at < raw_before)
        .order_by(HealthSweep.id)
        .limit(DELETE_BATCH)
    )
    ids = list(await session.scalars(expired))
    if ids:
        await session.execute(delete(HealthResult).where(HealthResult.sweep_id.in_(ids)))
        await session.execute(delete(HealthSweep).where(HealthSweep.id.in_(ids)))
    await days.delete_expired(session, before=rollups_before)
    await session.execute(delete(HealthIncident).where(HealthIncident.ended_at < rollups_before))
    return len(ids)
