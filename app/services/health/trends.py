"""Reading health history: uptime, latency, failures, changes, incidents and the direction.

"The last N hours" is a rolling window of N x 60 minutes ending now, compared with the
window of the same length before it. Figures come from the hourly rows (see ``history``),
plus the stretch since each component's last report, which no row holds yet. A window's
edge rarely falls on a whole hour: the hour it cuts is split with the raw results of that
hour, accounted by the ledger's own rules (``EdgeSplit``). Once the raw results of an edge
hour have been pruned, the edge moves to the nearest whole hour and the answer says so
(``precision`` "hour").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Row,
    Select,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from watchkeeper_agent.sketch import HEADER

from app.core.hours import HOUR, hour_floor, split_by_hour
from app.db.aggregates import joined_sketches
from app.db.models import (
    ComponentState,
    HealthDay,
    HealthHour,
    HealthIncident,
    HealthResult,
    HealthSweep,
)
from app.db.models.health import OVERALL
from app.db.store import group_blobs_in_memory
from app.schemas.health import ComponentTrend, HealthTrend, Incident, TrendPrecision
from app.services.health.days import SUMMED, cut_days, hours_and_days, moment
from app.services.health.history import (
    InMaintenance,
    Observation,
    credited_until,
    overall_observation,
)
from app.vocabulary.health import ComponentStatus
from app.vocabulary.histograms import EMPTY, Histogram, decode_groups
from app.vocabulary.sketch import encode_groups

# A change smaller than these is noise, not a direction.
UPTIME_STEP_POINTS = 0.1
LATENCY_STEP_RATIO = 0.2
# The window before must have been watched this share of its length to be compared with:
# a monitor started yesterday has no month before this one.
MIN_COMPARED_SHARE = 0.25
# The reported quantiles of check latency.
QUANTILES = (0.5, 0.95, 0.99)


@dataclass
class Sketches:
    """Serialised latency sketches as the store's aggregate hands them over: their headers
    and their records, each run end to end (a month of hours is one row per component, not
    ~700)."""

    headers: list[bytes] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)

    def add(self, headers: bytes, records: bytes) -> None:
        self.headers.append(headers)
        self.records.append(records)

    def append(self, sketch: bytes) -> None:
        self.add(sketch[: HEADER.size], sketch[HEADER.size :])

    def extend(self, other: Sketches) -> None:
        self.headers.extend(other.headers)
        self.records.extend(other.records)

    def merged(self) -> Histogram:
        """Every sketch merged, in numpy (no Python loop over buckets)."""
        if not self.headers:
            return EMPTY
        (merged,) = decode_groups([b"".join(self.headers)], [b"".join(self.records)])
        return merged


@dataclass
class Tally:
    """Sums over some stretch of one component's history."""

    seconds: dict[ComponentStatus, float] = field(
        default_factory=lambda: dict.fromkeys(ComponentStatus, 0.0)
    )
    maintenance_s: float = 0.0
    checks: int = 0
    failures: int = 0
    status_changes: int = 0
    latency_sum_ms: float = 0.0
    latency_count: int = 0
    sketches: Sketches = field(default_factory=Sketches)

    def add_sums(self, row: Row[Any], sign: int = 1) -> None:
        """Adds (or with ``sign`` -1 takes away) one row of ``SUMMED`` sums."""
        self.seconds[ComponentStatus.HEALTHY] += sign * row.healthy_s
        self.seconds[ComponentStatus.DEGRADED] += sign * row.degraded_s
        self.seconds[ComponentStatus.UNHEALTHY] += sign * row.unhealthy_s
        self.seconds[ComponentStatus.UNKNOWN] += sign * row.unknown_s
        self.maintenance_s += sign * row.maintenance_s
        self.checks += sign * row.checks
        self.failures += sign * row.failures
        self.status_changes += sign * row.status_changes
        self.latency_sum_ms += sign * row.latency_sum_ms
        self.latency_count += sign * row.latency_count

    def add(self, other: Tally, sign: int = 1) -> None:
        """Adds (or with ``sign`` -1 takes away) another tally's sums; sketches only add."""
        for status, seconds in other.seconds.items():
            self.seconds[status] += sign * seconds
        self.maintenance_s += sign * other.maintenance_s
        self.checks += sign * other.checks
        self.failures += sign * other.failures
        self.status_changes += sign * other.status_changes
        self.latency_sum_ms += sign * other.latency_sum_ms
        self.latency_count += sign * other.latency_count
        if sign > 0:
            self.sketches.extend(other.sketches)

    def time_in_states(self) -> dict[str, float]:
        """Seconds in each status and in maintenance, to 0.1 s, as the answers name them."""
        return {
            "healthy_s": round(self.seconds[ComponentStatus.HEALTHY], 1),
            "degraded_s": round(self.seconds[ComponentStatus.DEGRADED], 1),
            "unhealthy_s": round(self.seconds[ComponentStatus.UNHEALTHY], 1),
            "unknown_s": round(self.seconds[ComponentStatus.UNKNOWN], 1),
            "maintenance_s": round(self.maintenance_s, 1),
        }

    def observed_s(self) -> float:
        """Seconds with a status to go by (maintenance included)."""
        return sum(self.seconds.values()) + self.maintenance_s

    @property
    def uptime_percent(self) -> float | None:
        up = self.seconds[ComponentStatus.HEALTHY] + self.seconds[ComponentStatus.DEGRADED]
        judged = up + self.seconds[ComponentStatus.UNHEALTHY]
        return round(100.0 * up / judged, 4) if judged > 1e-9 else None

    def latency_histogram(self) -> Histogram:
        return self.sketches.merged()

    def latency_p95(self) -> float | None:
        p95 = self.latency_histogram().quantile(0.95)
        return None if p95 is None else round(p95, 2)


def uptime_direction(before: Tally, now: Tally) -> tuple[str, str] | None:
    """Improving or degrading uptime against the window before; None within noise."""
    earlier, later = before.uptime_percent, now.uptime_percent
    if earlier is not None and later is not None and abs(later - earlier) >= UPTIME_STEP_POINTS:
        verdict = "improving" if later > earlier else "degrading"
        return verdict, f"uptime {earlier:.2f}% → {later:.2f}% against the window before"
    return None


def latency_direction(before: Tally, now: Tally) -> tuple[str, str]:
    """Improving, stable or degrading by latency p95, once uptime told nothing."""
    slow_before, slow_after = before.latency_p95(), now.latency_p95()
    if slow_before and slow_after and abs(slow_after / slow_before - 1) >= LATENCY_STEP_RATIO:
        verdict = "improving" if slow_after < slow_before else "degrading"
        return verdict, f"latency p95 {slow_before:.0f} ms → {slow_after:.0f} ms"
    if before.uptime_percent is None or now.uptime_percent is None:
        return "stable", "not enough history in this window and the one before it to tell"
    return "stable", "uptime and latency p95 within noise against the window before"


class Window(IntEnum):
    BEFORE = 0
    CURRENT = 1


class Part(IntEnum):
    """Where an hourly row lies: the hour of an edge, or inside a window."""

    BEFORE_EDGE = 0  # the hour the earlier window's start cuts
    BEFORE = 1
    EDGE = 2  # the hour the window's start cuts
    CURRENT = 3


# The parts of the hours whose sketches come with the sums: the current window's.
_SKETCHED_PARTS = (Part.EDGE, Part.CURRENT)


@dataclass
class EdgeSplit:
    """One component's share of an edge hour: sums before the edge, latencies either side."""

    early: Tally = field(default_factory=Tally)
    early_latencies: list[float] = field(default_factory=list)
    late_latencies: list[float] = field(default_factory=list)
    # Serialised sketches of the latencies either side, once ``_sketch_splits`` made them.
    early_sketch: bytes | None = None
    late_sketch: bytes | None = None


def _sketch_splits(splits: dict[str, EdgeSplit]) -> None:
    """Sketches the latencies either side of the edge, every component's at once (an edge
    hour of 20 targets is ~1,300 of them, one ``QuantileSketch.add`` each otherwise)."""
    sides = [
        (name, side, latencies)
        for name, split in splits.items()
        for side, latencies in (("early", split.early_latencies), ("late", split.late_latencies))
        if latencies
    ]
    values = np.fromiter(
        (value for _, _, latencies in sides for value in latencies), dtype=np.float64
    )
    groups = np.repeat(np.arange(len(sides)), [len(latencies) for _, _, latencies in sides])
    for (name, side, _), blob in zip(sides, encode_groups(values, groups, len(sides)), strict=True):
        setattr(splits[name], f"{side}_sketch", blob)


@dataclass(frozen=True)
class Edge:
    """Where a window starts (``at``), and the hour the start asked for falls in: ``split``
    when raw results divide that hour, else it is wholly in one window."""

    at: datetime
    hour: datetime
    split: bool


class HealthTrendQuery:
    """The trend over the ``hours`` x 60 minutes up to ``now``, against the span before."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        hours: int,
        now: datetime,
        max_gap: timedelta,
        in_maintenance: InMaintenance = lambda _component, _at: False,
        overall_only: bool = False,
    ) -> None:
        self.session = session
        self.in_maintenance = in_maintenance
        # The overall status alone (what the uptime objective reads): no component's sums,
        # sketches, running state or incidents are read, which at thousands of components
        # is most of the work.
        self.overall_only = overall_only
        self.hours = hours
        self.now = now
        self.max_gap = max_gap
        self._oldest_raw: datetime | None = None
        self._last_reported: dict[str, datetime] | None = None

    async def compute(self) -> HealthTrend:
        """The window's figures, overall and per component, and its direction."""
        span = self.hours * HOUR
        asked = (self.now - 2 * span, self.now - span)
        sums = await self._sums(asked)
        before_edge = await self._edge(asked[0], Part.BEFORE_EDGE, sums)
        edge = await self._edge(asked[1], Part.EDGE, sums)
        edges = (before_edge, edge)
        start = edge.at
        current: dict[str, Tally] = defaultdict(Tally)
        before: dict[str, Tally] = defaultdict(Tally)
        kinds: dict[str, str] = {}
        windows = {Window.CURRENT: current, Window.BEFORE: before}
        for row in sums:
            kinds[row.component] = row.kind
            part = Part(row.part)
            window = _window_of(part, edges)
            if window is not None:
                windows[window][row.component].add_sums(row)
            # This window's sketches came with its sums (the window before's are read only
            # if its direction needs them); the edge hour's may belong to either window.
            owner = _window_of(part, edges, sketch=True)
            if part in _SKETCHED_PARTS and owner is not None and row.headers is not None:
                windows[owner][row.component].sketches.add(row.headers, row.records)
        for window_edge, later, earlier in ((before_edge, before, None), (edge, current, before)):
            if window_edge.split:
                for component, split in (await self._split(window_edge.at)).items():
                    if self.overall_only and component != OVERALL:
                        continue
                    later[component].add(split.early, sign=-1)
                    if split.late_sketch is not None:
                        later[component].sketches.append(split.late_sketch)
                    if earlier is not None:
                        earlier[component].add(split.early)
                        if split.early_sketch is not None:
                            earlier[component].sketches.append(split.early_sketch)
        for state in await self.session.scalars(select(ComponentState).where(*self._only())):
            kinds[state.component] = state.kind
            self._add_running(current[state.component], state, start, self.now)
            self._add_running(before[state.component], state, before_edge.at, start)
        incidents = await self._incidents(start)
        window_s = (self.now - start).total_seconds()
        trends = {
            name: _trend(name, kinds.get(name), tally, incidents.get(name, []), window_s)
            for name, tally in current.items()
        }
        overall = trends.pop(OVERALL, None) or _trend(OVERALL, None, Tally(), [], window_s)
        earlier_seen = before[OVERALL].observed_s()
        if earlier_seen < MIN_COMPARED_SHARE * (start - before_edge.at).total_seconds():
            verdict, reason = "stable", "not enough history in the window before to compare with"
        else:
            verdict, reason = uptime_direction(before[OVERALL], current[OVERALL]) or (
                await self._latency_direction(windows, edges)
            )
        moved = any(e.at != asked_at for asked_at, e in zip(asked, edges, strict=True))
        return HealthTrend(
            hours=self.hours,
            window_start=start,
            window_end=self.now,
            previous_window_start=before_edge.at,
            precision=TrendPrecision.HOUR if moved else TrendPrecision.EXACT,
            uptime_percent=overall.uptime_percent,
            previous_uptime_percent=before[OVERALL].uptime_percent,
            direction=verdict,
            direction_reason=reason,
            overall=overall,
            components=sorted(trends.values(), key=lambda t: t.name),
        )

    async def _latency_direction(
        self, windows: dict[Window, dict[str, Tally]], edges: tuple[Edge, Edge]
    ) -> tuple[str, str]:
        """The direction told by latency, once uptime told none: only then are the earlier
        window's sketches read (every component's, as a month of them is ~16,000 rows)."""
        await self._add_earlier_sketches(windows[Window.BEFORE], edges)
        before, current = (self._overall_latency(windows[w]) for w in Window)
        return latency_direction(before, current)

    async def _add_earlier_sketches(
        self, before: dict[str, Tally], edges: tuple[Edge, Edge]
    ) -> None:
        """The hourly latency sketches of the window before: the hour its start cuts (unless
        raw results split it) and the hours up to the one the current window's start cuts,
        which came with the current window's sums."""
        edge, later = edges
        if _window_of(Part.BEFORE_EDGE, edges, sketch=True) is Window.BEFORE:
            for component, headers, records in await self._hour_sketches(edge.hour, edge.hour):
                before[component].sketches.add(headers, records)
        # Plain ranges, so the store compares no more than it must for each of ~16,000 rows.
        for component, headers, records in await self._hour_sketches(
            edge.hour + HOUR, later.hour - HOUR
        ):
            before[component].sketches.add(headers, records)

    async def _hour_sketches(
        self, first: datetime, last: datetime
    ) -> list[tuple[str, bytes, bytes]]:
        """Per component, the sketches of every hour from ``first`` to ``last`` with
        latencies (see ``joined_sketches``), whole days read as days: a few rows each."""
        cuts = cut_days(first, last)
        connection = await self.session.connection()
        found = await connection.execute(
            _sketches_statement(len(cuts) // 2), {"first": first, "last": last, **cuts}
        )
        return [(component, headers, records) for component, headers, records in found.all()]

    async def _sums(self, asked: tuple[datetime, datetime]) -> list[Row[Any]]:
        """Sums per component and ``Part`` (a few rows each, to be added up): every
        component's in this window, and only the overall status's before it (its uptime
        is all the comparison shows); with them, the latency sketches of each part, joined
        end to end by the store (``joined_sketches``)."""
        # The store sums the rows: days for whole days, hours for the days the edges and
        # now cut (a month of 22 components is ~700 day rows and ~600 hour rows).
        earliest, latest = (hour_floor(at) for at in asked)
        cuts = cut_days(earliest, latest, self.now)
        await group_blobs_in_memory(await self.session.connection())
        found = await self.session.execute(
            _sums_statement(len(cuts) // 2, overall_only=self.overall_only),
            {"earliest": earliest, "latest": latest, "now": self.now, **cuts},
        )
        return list(found)

    async def _edge(self, asked: datetime, part: Part, sums: Sequence[Row[Any]]) -> Edge:
        """Where a window asked to start at ``asked`` starts, and how the hour it cuts (the
        rows of ``part``) is divided."""
        hour = hour_floor(asked)
        if hour == asked or not any(row.part == part for row in sums):
            return Edge(asked, hour, split=False)  # a whole hour, or no row to divide
        if self._oldest_raw is None:
            self._oldest_raw = await self.session.scalar(select(func.min(HealthResult.checked_at)))
        if self._oldest_raw is not None and self._oldest_raw <= hour - self.max_gap:
            return Edge(asked, hour, split=True)
        # Raw results pruned: the whole hour goes to the window that holds most of it.
        return Edge(hour if asked - hour < HOUR / 2 else hour + HOUR, hour, split=False)

    async def _split(self, at: datetime) -> dict[str, EdgeSplit]:
        """Each component's part of the hour ``at`` cuts that lies before ``at``, from the
        raw results, by the ledger's rules: a status holds until the next report, at most
        ``max_gap``, and only once a next report has come (the running state is separate).
        After ``at`` only the latencies count, for the later part's sketch."""
        hour = hour_floor(at)
        # Core rows unpacked as tuples: an edge hour of 20 targets is ~1,300 results, and
        # the ones after the edge are read as two plain columns.
        connection = await self.session.connection()
        rows = await connection.execute(
            select(
                HealthResult.sweep_id,
                HealthResult.component,
                HealthResult.kind,
                HealthResult.status,
                HealthResult.latency_ms,
                HealthResult.checked_at,
                HealthSweep.started_at,
                HealthSweep.status,
            )
            .join(HealthSweep, HealthSweep.id == HealthResult.sweep_id)
            .where(
                HealthResult.checked_at >= hour - self.max_gap,
                HealthResult.checked_at < at,
            )
        )
        by_component: dict[str, list[Observation]] = defaultdict(list)
        by_sweep: dict[int, list[Observation]] = defaultdict(list)
        sweeps: dict[int, tuple[datetime, ComponentStatus | None]] = {}
        for row in rows.all():
            sweep_id, component, kind, status, latency_ms, checked_at, started_at, worst = row
            seen = Observation(component, kind, status, checked_at, latency_ms, "")
            by_component[component].append(seen)
            by_sweep[sweep_id].append(seen)
            sweeps[sweep_id] = (started_at, worst)
        for sweep_id, (started_at, sweep_status) in sweeps.items():
            found = by_sweep[sweep_id]
            overall = overall_observation(
                found, started_at, sweep_status or found[0].status, self.in_maintenance
            )
            by_component[OVERALL].append(overall)
        last_reports = await self._last_reports()
        splits: dict[str, EdgeSplit] = defaultdict(EdgeSplit)
        for component, reports in by_component.items():
            splits[component] = self._split_one(
                sorted(reports, key=lambda o: o.at), hour, at, last_reports.get(component)
            )
        later = await connection.execute(
            select(HealthResult.component, HealthResult.latency_ms).where(
                HealthResult.checked_at >= at, HealthResult.checked_at < hour + HOUR
            )
        )
        for component, latency_ms in later.all():
            if latency_ms is not None:
                splits[component].late_latencies.append(latency_ms)
        _sketch_splits(splits)
        return dict(splits)

    async def _last_reports(self) -> dict[str, datetime]:
        """When each component last reported (read once for both edges)."""
        if self._last_reported is None:
            states = await self.session.execute(
                select(ComponentState.component, ComponentState.last_checked_at)
            )
            self._last_reported = {row.component: row.last_checked_at for row in states}
        return self._last_reported

    def _split_one(
        self,
        seen: Sequence[Observation],
        hour: datetime,
        at: datetime,
        last_report: datetime | None,
    ) -> EdgeSplit:
        """The early part of one component's edge hour, from its reports before ``at``."""
        split = EdgeSplit()
        early = split.early
        for index, report in enumerate(seen):
            if hour <= report.at:
                early.checks += 1
                early.failures += report.status is ComponentStatus.UNHEALTHY
                if index and seen[index - 1].status is not report.status:
                    early.status_changes += 1
                if report.latency_ms is not None:
                    early.latency_sum_ms += report.latency_ms
                    early.latency_count += 1
                    split.early_latencies.append(report.latency_ms)
            if index + 1 < len(seen):
                following = seen[index + 1].at
            elif last_report is not None and last_report > report.at:
                # A later report exists, at ``at`` or after: the credit ends at ``at``.
                following = report.at + self.max_gap
            else:
                continue  # still the latest report: the running state's, not a row's
            begin = max(report.at, hour)
            end = min(credited_until(report.at, following, self.max_gap), at)
            if end > begin:
                seconds = (end - begin).total_seconds()
                if self.in_maintenance(report.component, report.at):
                    early.maintenance_s += seconds
                else:
                    early.seconds[report.status] += seconds
        return split

    def _add_running(
        self, tally: Tally, state: ComponentState, start: datetime, end: datetime
    ) -> None:
        """The time since the last report within ``[start, end)``, still in its status (up
        to the gap allowed)."""
        until = min(end, credited_until(state.last_checked_at, self.now, self.max_gap))
        begin = max(state.last_checked_at, start)
        seconds = sum(s for _, s in split_by_hour(begin, until))
        if self.in_maintenance(state.component, state.last_checked_at):
            tally.maintenance_s += seconds
        else:
            tally.seconds[state.status] += seconds

    @staticmethod
    def _overall_latency(tallies: dict[str, Tally]) -> Tally:
        """A window's overall tally carrying every component's latency sketches: the overall
        status has no latency of its own, and a slowdown must show in the direction too."""
        overall = Tally()
        overall.add(tallies.get(OVERALL, Tally()))
        for name, tally in tallies.items():
            if name != OVERALL:
                overall.sketches.extend(tally.sketches)
        return overall

    def _only(self, component: Any = ComponentState.component) -> tuple[Any, ...]:
        return _only(component, overall_only=self.overall_only)

    async def _incidents(self, start: datetime) -> dict[str, list[Incident]]:
        # Core rows, not objects: a month of a flaky fleet is hundreds of incidents.
        connection = await self.session.connection()
        rows = await connection.execute(
            select(
                HealthIncident.component,
                HealthIncident.started_at,
                HealthIncident.ended_at,
                HealthIncident.message,
            )
            .where(
                HealthIncident.started_at <= self.now,
                or_(HealthIncident.ended_at.is_(None), HealthIncident.ended_at >= start),
                *self._only(HealthIncident.component),
            )
            .order_by(HealthIncident.started_at)
        )
        found: dict[str, list[Incident]] = defaultdict(list)
        for component, started_at, ended_at, message in rows.all():
            until = ended_at or self.now
            found[component].append(
                Incident(
                    component=component,
                    started_at=started_at,
                    ended_at=ended_at,
                    duration_s=round((until - started_at).total_seconds(), 1),
                    message=message,
                )
            )
        return found


def _only(component: Any, *, overall_only: bool) -> tuple[ColumnElement[bool], ...]:
    """The condition keeping only the overall status's rows, when only it is asked."""
    return (component == OVERALL,) if overall_only else ()


def _part(at: Any) -> Any:
    """Which ``Part`` a row is, by its hour (a day row is never one an edge cuts)."""
    first, second = moment("earliest"), moment("latest")
    return case(
        (at == first, int(Part.BEFORE_EDGE)),
        (at < second, int(Part.BEFORE)),
        (at == second, int(Part.EDGE)),
        else_=int(Part.CURRENT),
    ).label("part")


@cache
def _sums_statement(cuts: int, *, overall_only: bool) -> CompoundSelect[Any]:
    """``HealthTrendQuery._sums``'s statement for ``cuts`` days read as hours, its values
    bound (``earliest``, ``latest``, ``now``, and ``cut_days``'s)."""

    def window(at: Any, component: Any) -> tuple[ColumnElement[bool], ...]:
        earliest, latest = moment("earliest"), moment("latest")
        return (
            or_(at >= latest, (component == OVERALL) & (at >= earliest)),
            at <= moment("now"),
            *_only(component, overall_only=overall_only),
        )

    def read(table: type[HealthHour] | type[HealthDay], at: Any) -> Select[Any]:
        part = _part(at)
        headers, records = joined_sketches(table.latency_sketch, table.latency_count > 0)
        return select(
            table.component,
            part,
            func.max(table.kind).label("kind"),
            *(func.sum(getattr(table, column)).label(column) for column in SUMMED),
            headers.label("headers"),
            records.label("records"),
        ).group_by(table.component, part)

    return hours_and_days(read, cuts=cuts, where=window)


@cache
def _sketches_statement(cuts: int) -> CompoundSelect[Any]:
    """``HealthTrendQuery._hour_sketches``'s statement, its values bound (``first``,
    ``last``, and ``cut_days``'s)."""

    def read(table: type[HealthHour] | type[HealthDay], _at: Any) -> Select[str, bytes, bytes]:
        return (
            select(table.component, *joined_sketches(table.latency_sketch))
            .where(table.latency_count > 0)
            .group_by(table.component)
        )

    return hours_and_days(
        read,
        cuts=cuts,
        where=lambda at, _component: (at >= moment("first"), at <= moment("last")),
    )


def _window_of(part: Part, edges: tuple[Edge, Edge], *, sketch: bool = False) -> Window | None:
    """The window a whole hourly row counts in, if any. The sums of a split hour go to the
    later window, less their early part (see ``compute``); its sketch, which cannot be
    divided, is replaced by sketches of the raw latencies either side."""
    if part is Part.CURRENT:
        return Window.CURRENT
    if part is Part.BEFORE:
        return Window.BEFORE
    edge = edges[0] if part is Part.BEFORE_EDGE else edges[1]
    later = Window.BEFORE if part is Part.BEFORE_EDGE else Window.CURRENT
    if edge.split:
        return None if sketch else later
    if edge.at > edge.hour:  # moved on to the next whole hour: the earlier window's
        return None if part is Part.BEFORE_EDGE else Window.BEFORE
    return later


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _trend(
    name: str, kind: str | None, tally: Tally, incidents: Sequence[Incident], window_s: float
) -> ComponentTrend:
    seen = tally.observed_s()
    merged = tally.latency_histogram()
    p50, p95, p99 = merged.quantiles(QUANTILES)
    return ComponentTrend(
        name=name,
        kind=kind,
        uptime_percent=tally.uptime_percent,
        **tally.time_in_states(),
        no_data_s=round(max(window_s - seen, 0.0), 1),
        checks=tally.checks,
        failures=tally.failures,
        status_changes=tally.status_changes,
        latency_avg_ms=(
            round(tally.latency_sum_ms / tally.latency_count, 2) if tally.latency_count else None
        ),
        latency_p50_ms=_rounded(p50),
        latency_p95_ms=_rounded(p95),
        latency_p99_ms=_rounded(p99),
        latency_max_ms=_rounded(merged.high if merged.count else None),
        incidents=list(incidents),
    )
