"""The contract of health: live component checks, system figures, and the trend."""

from __future__ import annotations

from datetime import datetime

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
    latency_avg_ms: float | None
    latency_p95_ms: float | None
    incidents: list[Incident]


class HealthTrend(ResponseSchema):
    hours: int
    window_start: datetime
    window_end: datetime
    uptime_percent: float | None = Field(description="Of the overall (worst-of) status.")
    direction: str = Field(description="improving, stable or degrading, from the two halves.")
    direction_reason: str
    overall: ComponentTrend
    components: list[ComponentTrend]


class HealthReport(Sweep):
    trend: HealthTrend
