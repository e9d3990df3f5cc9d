"""PerformanceAnalyzer: what the recorded requests say — analysis, bottlenecks,
recommendations, trends, the spec's four success criteria and the services measured.

Every request answer is for the services asked for (none asked: every service), each
endpoint named by its service, method and route; ``overall`` is over those services.

Every answer is computed from the stored per-minute and hourly rows (see
``performance/figures.py``) and, for hosts and dependencies, from the health history.
"The last N hours" (or days) is a rolling window of exactly that length ending now, to the
minute while minute rows are kept, compared with the window of the same length before it
(see ``performance/windows.py``); an answer whose window had to start at a whole hour says
so. The rules are pure functions in ``performance/detectors.py``,
``performance/resources.py`` and ``performance/advice.py``; this class fetches, windows
and assembles. Targets are the configured :class:`Objectives`, limits the
:class:`Thresholds`; the constants below only say over which windows things are measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.hours import HOUR
from app.schemas.issues import StatisticsQuery
from app.schemas.objectives import Objectives
from app.schemas.performance import (
    Bottleneck,
    BottleneckReport,
    EndpointFigures,
    EndpointTrend,
    MeasurementWindow,
    PerformanceAnalysis,
    PerformanceTrends,
    PeriodFigures,
    RecommendationReport,
    RequestFigures,
    ResponseTimeSlo,
    ServiceReport,
    SloCriterion,
    SloReport,
    TrendPeriod,
)
from app.services.health import HealthTrendQuery
from app.services.issues import IssueStatisticsQuery, ResolutionTargets
from app.services.performance import advice, catalog, detectors, resources
from app.services.performance.figures import (
    Endpoint,
    RequestAggregate,
    merged,
    read_aggregates,
    read_segments,
)
from app.services.performance.thresholds import Thresholds
from app.services.performance.windows import Span, Windows, joined, minute_floor

DAY: Final = timedelta(days=1)
PERIODS: Final = {
    TrendPeriod.WEEK: (timedelta(days=7), 8),
    TrendPeriod.QUARTER: (timedelta(days=91), 4),
}
# The success criteria are judged over the last 30 days (uptime, latency), over the issues
# of the last 90 days (resolution), and quarter against quarter (improvement).
SLO_WINDOW: Final = timedelta(days=30)
ISSUE_WINDOW: Final = timedelta(days=90)
# Regressions compare the last day of the window (6 h for a one-day window) to the rest.
RECENT: Final = timedelta(hours=24)
RECENT_SHORT: Final = timedelta(hours=6)
CHANGED: Final = (
    "requests",
    "requests_per_minute",
    "avg_ms",
    "median_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "error_rate",
    "client_error_rate",
    "share_of_time",
)


def _window(start: datetime, end: datetime) -> MeasurementWindow:
    return MeasurementWindow(
        start=start, end=end, hours=round((end - start).total_seconds() / 3600, 3)
    )


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return round(now / before - 1, 4)


@dataclass(frozen=True)
class Measured:
    """An aggregate over a window of ``minutes``, of which ``total_ms`` is all serving time."""

    aggregate: RequestAggregate
    minutes: float
    total_ms: float

    @property
    def rate(self) -> float:
        """Requests a minute."""
        return self.aggregate.requests / self.minutes if self.minutes else 0.0

    def figures(self) -> dict[str, float | None]:
        aggregate = self.aggregate
        median, p95, p99 = aggregate.quantiles((0.5, 0.95, 0.99))
        return {
            "requests": aggregate.requests,
            "requests_per_minute": round(self.rate, 4),
            "avg_ms": aggregate.avg_ms,
            "median_ms": median,
            "p95_ms": p95,
            "p99_ms": p99,
            "max_ms": round(aggregate.max_ms, 3) if aggregate.requests else None,
            "error_rate": _ratio(aggregate.server_errors, aggregate.requests),
            "client_error_rate": _ratio(aggregate.client_errors, aggregate.requests),
            "share_of_time": _ratio(aggregate.sum_ms, self.total_ms),
        }


def figures(now: Measured, before: Measured | None) -> dict[str, Any]:
    """The analysis figures of ``now``, with the change against ``before``."""
    found = now.figures()
    was = before.figures() if before else {}
    change = {name: _change(found[name], was.get(name)) for name in CHANGED}
    # Volume compares rates: a window whose start moved to an hour is longer than asked.
    change["requests"] = _change(now.rate, before.rate) if before else None
    return {**found, "change": change}


class PerformanceAnalyzer:
    """The performance answers of one session, as of the clock's ``now``."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        objectives: Objectives,
        thresholds: Thresholds,
        pool_size: int,
        resolution_targets: ResolutionTargets,
        minute_retention: timedelta,
    ) -> None:
        self.session = session
        self.now = now
        self.objectives = objectives
        self.thresholds = thresholds
        self.pool_size = pool_size
        self.resolution_targets = resolution_targets
        self.windows = Windows(now, minute_retention)

    async def analysis(self, hours: int, *, services: Sequence[str] = ()) -> PerformanceAnalysis:
        """Overall and per-endpoint figures of the last ``hours`` hours, with their change
        against the ``hours`` before."""
        previous, current = self.windows.last(hours * HOUR, 2)
        before, now = await read_segments(
            self.session, (previous.start, current.start, current.end), services=services
        )
        overall_now, overall_before = merged(now.values()), merged(before.values())
        measured_now = Measured(overall_now, current.minutes, overall_now.sum_ms)
        measured_before = Measured(overall_before, previous.minutes, overall_before.sum_ms)
        endpoints = []
        for endpoint, aggregate in now.items():
            earlier = before.get(endpoint)
            found = figures(
                Measured(aggregate, current.minutes, overall_now.sum_ms),
                Measured(earlier, previous.minutes, overall_before.sum_ms) if earlier else None,
            )
            endpoints.append(
                EndpointFigures(
                    service=endpoint.service, method=endpoint.method, route=endpoint.route, **found
                )
            )
        endpoints.sort(key=lambda e: (-(e.share_of_time or 0.0), e.service, e.route, e.method))
        return PerformanceAnalysis(
            window=current.measured(),
            previous_window=previous.measured(),
            overall=RequestFigures(**figures(measured_now, measured_before)),
            endpoints=endpoints,
            slo=self._response_time_slo(overall_now),
            note=joined(
                self.windows.edges_note({"the window": current, "the previous window": previous}),
                None
                if overall_now.requests
                else (
                    f"No requests{_of(services)} were recorded in the last {hours} hours; "
                    "figures are null until requests are served and flushed."
                ),
            ),
        )

    def _response_time_slo(self, aggregate: RequestAggregate) -> ResponseTimeSlo:
        objectives = self.objectives
        share = aggregate.share_within(objectives.latency_ms)
        return ResponseTimeSlo(
            target_ms=objectives.latency_ms,
            target_share=objectives.latency_share,
            share_within_target=None if share is None else round(share, 6),
            p95_ms=aggregate.quantile(0.95),
            met=None if share is None else share >= objectives.latency_share,
        )

    async def bottlenecks(self, days: int, *, services: Sequence[str] = ()) -> BottleneckReport:
        """Every bottleneck of the last ``days`` days, worst first: the endpoints' of
        ``services``, the hosts' and the dependencies'."""
        (window,) = self.windows.last(days * DAY)
        found = await self._bottlenecks(window, days, services)
        return BottleneckReport(
            window=window.measured(),
            bottlenecks=found,
            note=joined(
                self.windows.edges_note({"the window": window}),
                None
                if found
                else (
                    f"No bottleneck in the last {days} days: every measured figure is within "
                    "its threshold, or there is too little data to judge."
                ),
            ),
        )

    async def _bottlenecks(
        self, window: Span, days: int, services: Sequence[str]
    ) -> list[Bottleneck]:
        start, end = window.start, window.end
        recent_length = RECENT if days > 1 else RECENT_SHORT
        recent_since = max(start, self.windows.edge(minute_floor(self.now) - recent_length))
        baseline, recent = await read_segments(
            self.session, (start, recent_since, end), services=services
        )
        whole = {
            endpoint: merged(part[endpoint] for part in (baseline, recent) if endpoint in part)
            for endpoint in baseline.keys() | recent.keys()
        }
        samples = await resources.read_host_samples(self.session, start, end)
        found = [
            *detectors.endpoint_bottlenecks(whole, self.thresholds, minutes=window.minutes),
            *detectors.regressions(baseline, recent, self.thresholds, recent_since=recent_since),
            *resources.saturation(samples, self.thresholds),
            *resources.exhaustion(samples, self.thresholds),
            *await resources.slow_dependencies(self.session, start, end, self.thresholds),
        ]
        return sorted(found, key=lambda b: (-b.severity.rank, -b.value / b.threshold, b.target))

    async def recommendations(
        self, days: int, *, services: Sequence[str] = ()
    ) -> RecommendationReport:
        """A concrete action for each bottleneck of the last ``days`` days."""
        (window,) = self.windows.last(days * DAY)
        found = advice.recommend(
            await self._bottlenecks(window, days, services), pool_size=self.pool_size
        )
        return RecommendationReport(
            window=window.measured(),
            recommendations=found,
            note=joined(
                self.windows.edges_note({"the window": window}),
                None
                if found
                else f"Nothing to recommend: no bottleneck was measured in the last {days} days.",
            ),
        )

    async def trends(
        self, period: TrendPeriod, *, services: Sequence[str] = ()
    ) -> PerformanceTrends:
        """Per-period figures, overall and per endpoint, with the improvement between them."""
        length, count = PERIODS[period]
        spans, per_period = await self._periods(length, count, services)
        overall = _trend([merged(p.values()) for p in per_period], spans)
        endpoints = sorted({e for p in per_period for e in p})
        improvement = overall[-1].p95_improvement
        target = self._improvement_target
        return PerformanceTrends(
            period=period,
            overall=overall,
            endpoints=[
                EndpointTrend(
                    service=endpoint.service,
                    method=endpoint.method,
                    route=endpoint.route,
                    periods=_trend(
                        [p.get(endpoint, RequestAggregate()) for p in per_period], spans
                    ),
                )
                for endpoint in endpoints
            ],
            improvement=improvement,
            improvement_target=target,
            target_met=(
                improvement > target
                if period is TrendPeriod.QUARTER and improvement is not None
                else None
            ),
            note=joined(
                self.windows.edges_note(
                    {f"period {number}": span for number, span in enumerate(spans, 1)}
                ),
                None
                if improvement is not None
                else "The improvement needs requests in both of the last two periods.",
            ),
        )

    @property
    def _improvement_target(self) -> float:
        """The quarterly improvement objective as a share (0.1 for 10%)."""
        return self.objectives.quarterly_improvement_percent / 100

    async def _periods(
        self, length: timedelta, count: int, services: Sequence[str]
    ) -> tuple[list[Span], list[dict[Endpoint, RequestAggregate]]]:
        """``count`` periods of ``length`` ending now, oldest first, and their aggregates."""
        spans = self.windows.last(length, count)
        per_period = await read_segments(
            self.session, [span.start for span in spans] + [self.now], services=services
        )
        return spans, per_period

    async def service_names(self) -> list[str]:
        """Every service whose requests are stored, by name: what a page lists to pick from."""
        return await catalog.service_names(self.session)

    async def services(self) -> ServiceReport:
        """Every service whose requests are stored, with its last day's figures."""
        return await catalog.service_report(self.session, now=self.now)

    async def slo(self, *, services: Sequence[str] = ()) -> SloReport:
        """The spec's four success criteria, each measured over its own window; response
        time and improvement over the requests of ``services``."""
        criteria = [
            await self._uptime(),
            await self._response_time(services),
            await self._resolution(),
            await self._improvement(services),
        ]
        verdicts = [c.met for c in criteria]
        return SloReport(
            checked_at=self.now,
            met=None if None in verdicts else all(verdicts),
            criteria=criteria,
        )

    async def _uptime(self) -> SloCriterion:
        target = self.objectives.availability_percent
        hours = int(SLO_WINDOW / HOUR)
        trend = await HealthTrendQuery(
            self.session,
            hours=hours,
            now=self.now,
            max_gap=self.thresholds.max_gap,
            overall_only=True,
        ).compute()
        uptime = trend.uptime_percent
        return SloCriterion(
            name="uptime",
            description=f"System uptime > {target:g}%",
            target=target,
            unit="percent",
            comparison=">",
            measured=uptime,
            window=_window(trend.window_start, trend.window_end),
            met=None if uptime is None else uptime > target,
            detail=(
                "time-weighted share of the monitored time the service was healthy or degraded"
                if uptime is not None
                else "no health history yet: run the monitor (in process or monitor_system.py)"
            ),
        )

    async def _response_time(self, services: Sequence[str]) -> SloCriterion:
        objectives = self.objectives
        label, share = objectives.latency_quantile_label, objectives.latency_share
        (window,) = self.windows.last(SLO_WINDOW)
        aggregate = merged(
            (
                await read_aggregates(self.session, window.start, window.end, services=services)
            ).values()
        )
        slo = self._response_time_slo(aggregate)
        return SloCriterion(
            name="response_time",
            description=(
                f"Response time < {objectives.latency_ms:g} ms for {share * 100:g}% of requests"
            ),
            target=objectives.latency_ms,
            unit=f"ms ({label})",
            comparison="<",
            measured=aggregate.quantile(share),
            window=window.measured(),
            met=slo.met,
            detail=(
                f"{slo.share_within_target:.2%} of {aggregate.requests} requests"
                f"{_of(services)} took at most {objectives.latency_ms:g} ms"
                if slo.share_within_target is not None
                else f"no requests{_of(services)} recorded in the window"
            ),
        )

    async def _resolution(self) -> SloCriterion:
        target = self.objectives.resolution_hours
        start = self.now - ISSUE_WINDOW
        statistics = await IssueStatisticsQuery(
            self.session,
            StatisticsQuery(created_after=start),
            targets=self.resolution_targets,
            now=self.now,
        ).compute()
        durations = statistics.time_to_resolution_hours
        return SloCriterion(
            name="issue_resolution",
            description=f"Issue resolution time < {target:g} hours",
            target=target,
            unit="hours (median)",
            comparison="<",
            measured=durations.median,
            window=_window(start, self.now),
            met=None if durations.median is None else durations.median < target,
            detail=(
                f"median of {durations.count} issues created in the window and resolved "
                f"(average {durations.avg} h, p90 {durations.p90} h), pauses excluded"
                if durations.count
                else "no issue created in the window has been resolved yet"
            ),
        )

    async def _improvement(self, services: Sequence[str]) -> SloCriterion:
        target = self._improvement_target
        length, _ = PERIODS[TrendPeriod.QUARTER]
        spans, per_period = await self._periods(length, 2, services)
        overall = _trend([merged(p.values()) for p in per_period], spans)
        improvement = overall[-1].p95_improvement
        return SloCriterion(
            name="quarterly_improvement",
            description=f"Performance improvements > {target * 100:g}% quarterly",
            target=self.objectives.quarterly_improvement_percent,
            unit="percent (p95 reduction)",
            comparison=">",
            measured=None if improvement is None else round(improvement * 100, 2),
            window=Span(spans[0].start, spans[-1].end, spans[0].asked_start).measured(),
            met=None if improvement is None else improvement > target,
            detail=(
                f"overall p95 {overall[0].p95_ms} ms in the previous 91 days, "
                f"{overall[1].p95_ms} ms in the last 91 days"
                if improvement is not None
                else "needs requests in both of the last two 91-day periods"
            ),
        )


def _of(services: Sequence[str]) -> str:
    """`` of shop, cart`` for an answer narrowed to services; nothing for every service."""
    return f" of {', '.join(sorted(set(services)))}" if services else ""


def _trend(aggregates: list[RequestAggregate], spans: list[Span]) -> list[PeriodFigures]:
    found: list[PeriodFigures] = []
    for aggregate, span in zip(aggregates, spans, strict=True):
        p95 = aggregate.quantile(0.95)
        before = found[-1].p95_ms if found else None
        found.append(
            PeriodFigures(
                start=span.start,
                end=span.end,
                requests=aggregate.requests,
                median_ms=aggregate.quantile(0.5),
                p95_ms=p95,
                error_rate=_ratio(aggregate.server_errors, aggregate.requests),
                p95_improvement=(
                    round(1 - p95 / before, 4) if p95 is not None and before else None
                ),
            )
        )
    return found
