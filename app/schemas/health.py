"""The contract of health: live component checks, system figures, and the trend."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from app.schemas.base import ResponseSchema
from app.vocabulary.health import CheckResult, ComponentStatus


class SystemSummary(ResponseSchema):
    cpu_percent: float
    memory_percent: float
    swap_percent: float
    disk_percent: float = Field(description="The fullest disk's use.")
    load_average: list[float]
    process_count: int
    uptime_s: float


class Sweep(ResponseSchema):
    """One round of every check."""

    status: ComponentStatus
    checked_at: datetime
    duration_ms: float
    components: list[CheckResult]
    system: SystemSummary | None


class CollectedSweep(Sweep):
    stored: bool = Field(description="False when the store was away; kept in memory to retry.")
    sweep_id: int | None


class Incident(ResponseSchema):
    component: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float = Field(description="Up to now for an incident still going on.")
    message: str


_QUANTILE = (
    "The latency at rank floor({q} x (checks - 1)) of the window's checks, from the hourly "
    "sketches: within 0.5% of the exact value."
)


class ComponentTrend(ResponseSchema):
    name: str
    kind: str | None
    uptime_percent: float | None = Field(description="Up (healthy or degraded) / (up + down).")
    healthy_s: float
    degraded_s: float
    unhealthy_s: float
    unknown_s: float
    maintenance_s: float = Field(description="Under a maintenance window: not counted in uptime.")
    no_data_s: float = Field(description="Time in the window with no check result to go by.")
    checks: int
    failures: int
    status_changes: int
    latency_avg_ms: float | None = Field(
        description="Mean of every check's latency: a few slow checks can lift it past p95."
    )
    latency_p50_ms: float | None = Field(description=_QUANTILE.format(q="0.5"))
    latency_p95_ms: float | None = Field(description=_QUANTILE.format(q="0.95"))
    latency_p99_ms: float | None = Field(description=_QUANTILE.format(q="0.99"))
    latency_max_ms: float | None = Field(description="The slowest check, exactly.")
    incidents: list[Incident]


class TrendPrecision(StrEnum):
    """How exactly a trend's windows start where they were asked to."""

    EXACT = "exact"  # the hour an edge cuts is divided by that hour's raw results
    HOUR = "hour"  # those results are pruned: the edge moved to the nearest whole hour


class HealthTrend(ResponseSchema):
    hours: int
    window_start: datetime = Field(description="hours x 60 minutes before window_end.")
    window_end: datetime
    previous_window_start: datetime = Field(
        description="The window compared against: the same length, ending at window_start."
    )
    precision: TrendPrecision = Field(
        description=(
            "exact: both windows start where asked; hour: the raw results of an edge's hour "
            "are pruned, so that edge moved to the nearest whole hour (the starts say where)."
        )
    )
    uptime_percent: float | None = Field(description="Of the overall (worst-of) status.")
    previous_uptime_percent: float | None = Field(description="The same, in the window before.")
    direction: str = Field(
        description="improving, stable or degrading: this window against the one before."
    )
    direction_reason: str
    overall: ComponentTrend
    components: list[ComponentTrend]


class LatestSweep(Sweep):
    """The latest sweep stored, or run by this process, and how old it is."""

    age_seconds: float = Field(description="How long ago the sweep was taken (checked_at).")
    stale: bool = Field(description="Older than two monitor intervals: no monitor has swept since.")


class HealthReport(LatestSweep):
    trend: HealthTrend
