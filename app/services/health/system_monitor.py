"""SystemMonitor: real-time health of the host, the store and every configured dependency,
the history behind the trends, and the sweeps the monitoring loop and the API run.

One monitor lives per process. ``latest`` answers from the newest sweep there is, stored
by any process or run by this one, and says how old it is: a request never waits for the
dependencies, except the very first on a store that holds no sweep at all (then one sweep
runs, shared by every caller meanwhile, and is kept in memory, not stored). ``collect`` runs
a sweep and stores it; when the store is away it keeps the sweep (bounded) and writes it
once the store is back. A sweep of a numbered slot is first claimed in the store — the
lease that lets several processes share one store with one sweep per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.hours import HOUR
from app.db.base import utcnow
from app.db.models import HealthResult, HealthSweep
from app.db.store import Store, is_outage
from app.schemas.health import CollectedSweep, HealthReport, LatestSweep, Sweep, SystemSummary
from app.schemas.targets import Target
from app.services.health import days
from app.services.health.checks import CheckContext, run_checks
from app.services.health.checks.registry import parse_targets
from app.services.health.checks.sql import DatabaseTarget
from app.services.health.checks.system import SystemTarget
from app.services.health.history import HealthLedger, InMaintenance, prune
from app.services.health.trends import HealthTrendQuery
from app.services.health.windows import config_windows, covering, known_windows, open_windows
from app.vocabulary.health import CheckResult, ComponentKind, worst_status

logger = logging.getLogger("watchkeeper.monitor")

STORE_COMPONENT = "store"
SYSTEM_COMPONENT = "system"


class SweepObserver(Protocol):
    """Called in the unit of work that stored a sweep (alert rules, for one)."""

    def __call__(self, session: AsyncSession, sweep: Sweep) -> Awaitable[None]: ...


def monitored_targets(settings: Settings) -> list[Target]:
    """The configured targets, with the host and Watchkeeper's own store always included;
    ConfigurationError names the target and field of a mistake."""
    targets = parse_targets(settings.targets)
    names = {target.name for target in targets}
    if not any(isinstance(target, SystemTarget) for target in targets):
        targets.insert(0, SystemTarget(kind=ComponentKind.SYSTEM, name=SYSTEM_COMPONENT))
    if STORE_COMPONENT not in names:
        store = DatabaseTarget(
            kind=ComponentKind.DATABASE, name=STORE_COMPONENT, url=settings.database_url
        )
        targets.insert(1, store)
    return targets


def system_summary(results: Sequence[CheckResult]) -> SystemSummary | None:
    """The host's headline figures, from the system check's details."""
    for result in results:
        if result.kind == ComponentKind.SYSTEM and "cpu_percent" in result.details:
            details = result.details
            return SystemSummary(
                cpu_percent=details["cpu_percent"],
                memory_percent=details["memory_percent"],
                swap_percent=details["swap_percent"],
                disk_percent=details["disk_percent"],
                load_average=details["load_average"],
                process_count=details["process_count"],
                uptime_s=details["uptime_s"],
            )
    return None


async def _latest_stored(session: AsyncSession) -> Sweep | None:
    """The newest sweep in the store with its results (a claimed slot has none yet)."""
    row = await session.scalar(
        select(HealthSweep)
        .where(HealthSweep.status.is_not(None))
        .order_by(HealthSweep.started_at.desc(), HealthSweep.id.desc())
        .limit(1)
    )
    if row is None or row.status is None:
        return None
    found = await session.scalars(
        select(HealthResult).where(HealthResult.sweep_id == row.id).order_by(HealthResult.id)
    )
    results = [
        CheckResult(
            name=result.component,
            kind=result.kind,
            status=result.status,
            latency_ms=result.latency_ms,
            message=result.message,
            details=result.details,
            checked_at=result.checked_at,
        )
        for result in found
    ]
    return Sweep(
        status=row.status,
        checked_at=row.started_at,
        duration_ms=row.duration_ms or 0.0,
        components=results,
        system=system_summary(results),
    )


class SystemMonitor:
    """Checks, caches, stores and reports the health of everything Watchkeeper watches."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.targets = monitored_targets(settings)
        self.context = CheckContext(engines={STORE_COMPONENT: store.engine})
        self.max_gap = timedelta(seconds=2 * settings.monitor_interval_seconds)
        self.observers: list[SweepObserver] = []
        self.windows = config_windows(settings.maintenance_windows)
        self.dropped_sweeps = 0
        # A kept sweep remembers the slot row it claimed, so it lands there and leaves no
        # empty claim behind.
        self._pending: deque[tuple[Sweep, str, HealthSweep | None]] = deque(
            maxlen=settings.monitor_buffer_limit
        )
        # The newest sweep this process ran, stored or not.
        self._latest: Sweep | None = None
        self._first_sweep = asyncio.Lock()

    async def sweep(self) -> Sweep:
        """Runs every check once, concurrently, each under its own timeout."""
        checked_at = self.clock()
        started = time.perf_counter()
        results = await run_checks(self.targets, self.context)
        sweep = Sweep(
            status=worst_status(result.status for result in results),
            checked_at=checked_at,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            components=results,
            system=system_summary(results),
        )
        self._latest = sweep
        return sweep

    async def latest(self, session: AsyncSession) -> LatestSweep:
        """The newest sweep, stored or this process's own, with its age (see module)."""
        try:
            stored = await _latest_stored(session)
        except Exception as error:
            if not is_outage(error) or self._latest is None:
                raise
            stored = None  # the store is away: this process's own sweeps still tell
        candidates = [s for s in (stored, self._latest) if s is not None]
        if not candidates:
            async with self._first_sweep:
                if self._latest is None:
                    await self.sweep()
            assert self._latest is not None
            candidates = [self._latest]
        newest = max(candidates, key=lambda sweep: sweep.checked_at)
        age = max((self.clock() - newest.checked_at).total_seconds(), 0.0)
        return LatestSweep(
            **newest.model_dump(),
            age_seconds=round(age, 1),
            stale=age > self.max_gap.total_seconds(),
        )

    async def collect(self, *, source: str, slot: int | None = None) -> CollectedSweep | None:
        """Runs a sweep and stores it; None when another process already took ``slot``."""
        claimed: HealthSweep | None = None
        if slot is not None:
            try:
                claimed = await self._claim(slot, source)
            except IntegrityError:
                return None
            except Exception as error:
                if not is_outage(error):
                    raise
                # the store is away: sweep anyway and keep the result
                logger.warning("cannot claim sweep slot %s: %s", slot, type(error).__name__)
        sweep = await self.sweep()
        try:
            await self._write_pending()
            sweep_id = await self._write(sweep, source, claimed)
        except Exception as error:
            if not is_outage(error):
                raise
            self._keep(sweep, source, claimed)
            logger.warning(
                "store unavailable, %d sweep(s) kept in memory: %s",
                len(self._pending),
                type(error).__name__,
            )
            return CollectedSweep(**sweep.model_dump(), stored=False, sweep_id=None)
        return CollectedSweep(**sweep.model_dump(), stored=True, sweep_id=sweep_id)

    @property
    def pending(self) -> int:
        """Sweeps waiting in memory for the store to come back."""
        return len(self._pending)

    async def _claim(self, slot: int, source: str) -> HealthSweep:
        async with self.store.unit_of_work() as session:
            row = HealthSweep(slot=slot, source=source, started_at=self.clock())
            session.add(row)
            await session.flush()
        return row

    async def _write(self, sweep: Sweep, source: str, claimed: HealthSweep | None) -> int:
        async with self.store.unit_of_work() as session:
            row = await session.merge(claimed) if claimed else None
            ledger = HealthLedger(
                session,
                max_gap=self.max_gap,
                in_maintenance=await self._maintenance(session, sweep.checked_at),
            )
            stored = await ledger.record(sweep, source=source, sweep_row=row)
            for observer in self.observers:
                await self._notify(observer, session, sweep)
            return stored.id

    async def _maintenance(self, session: AsyncSession, now: datetime) -> InMaintenance:
        """Whether a component is under a maintenance window (those open at ``now``)."""
        windows = await open_windows(session, self.windows, now)
        return lambda component, at: covering(windows, component, None, at) is not None

    @staticmethod
    async def _notify(observer: SweepObserver, session: AsyncSession, sweep: Sweep) -> None:
        """Runs one observer in a savepoint: its failure must never cost the health history."""
        try:
            async with session.begin_nested():
                await observer(session, sweep)
        except Exception as error:
            if is_outage(error):
                raise
            logger.exception("sweep observer %s failed", type(observer).__name__)

    def _keep(self, sweep: Sweep, source: str, claimed: HealthSweep | None) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped_sweeps += 1  # the oldest goes; memory stays bounded
        self._pending.append((sweep, source, claimed))

    async def _write_pending(self) -> None:
        while self._pending:
            sweep, source, claimed = self._pending[0]
            await self._write(sweep, source, claimed)
            self._pending.popleft()

    async def report(self, session: AsyncSession, hours: int) -> HealthReport:
        """The latest sweep with its age, and the trend of the last ``hours`` hours."""
        latest = await self.latest(session)
        windows = await known_windows(session, self.windows)
        trend = await HealthTrendQuery(
            session,
            hours=hours,
            now=self.clock(),
            max_gap=self.max_gap,
            in_maintenance=lambda component, at: covering(windows, component, None, at) is not None,
        ).compute()
        return HealthReport(**latest.model_dump(), trend=trend)

    async def housekeeping(self) -> int:
        """Deletes expired history in batches, then rolls the hours of complete days up into
        days (see ``days``); returns the sweeps removed."""
        now = self.clock()
        removed = 0
        rollups_before = now - timedelta(days=self.settings.health_rollup_retention_days)
        while True:
            async with self.store.unit_of_work() as session:
                batch = await prune(
                    session,
                    raw_before=now - timedelta(days=self.settings.health_retention_days),
                    rollups_before=rollups_before,
                )
            removed += batch
            if batch == 0:
                break
        # A day is rolled once the credit of its last hour is in (it comes up to max_gap
        # after the hour); a later change reopens it.
        rolled = 1
        while rolled:
            async with self.store.unit_of_work() as session:
                rolled = await days.roll_up(
                    session, before=now - self.max_gap - HOUR, since=rollups_before
                )
        return removed

    async def aclose(self) -> None:
        """Closes the clients the checks opened, saying so if unstored sweeps go with it."""
        if self._pending:
            # The log said they were kept in memory: it must not end on that.
            logger.warning(
                "%d sweep(s) never stored (the store did not answer) are lost at exit",
                len(self._pending),
            )
        await self.context.aclose()
