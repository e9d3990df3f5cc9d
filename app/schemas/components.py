"""The contract of the component views: where each component stands, and one component's
history (latency and status over a range, incidents, its last checks)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from app.schemas.base import Offset, RequestSchema, ResponseSchema
from app.schemas.health import Incident
from app.vocabulary.health import ComponentStatus


class ComponentSummary(ResponseSchema):
    """A component as its latest stored check left it."""

    name: str
    kind: str
    status: ComponentStatus
    since: datetime = Field(description="When it entered this status.")
    last_checked_at: datetime
    last_latency_ms: float | None
    last_message: str


class ComponentQuery(RequestSchema):
    """Which components to list: problems first (unhealthy, degraded, unknown), by name."""

    status: ComponentStatus | None = None
    q: str | None = Field(default=None, min_length=1, max_length=100, description="In the name.")
    limit: int = Field(default=50, ge=1, le=500)
    offset: Offset = 0


class ComponentPage(ResponseSchema):
    status: ComponentStatus = Field(description="The worst status of every component now.")
    counts: dict[ComponentStatus, int] = Field(description="Components in each status now.")
    last_checked_at: datetime | None = Field(description="The newest check of any component.")
    total: int = Field(description="Components matching the query.")
    items: list[ComponentSummary]


class HistoryRange(StrEnum):
    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"
    QUARTER = "90d"


class HistoryPoint(ResponseSchema):
    """One bucket (an hour, or a day for the longer ranges) of a component's history."""

    start: datetime
    checks: int
    failures: int
    uptime_percent: float | None = Field(description="Up (healthy or degraded) / (up + down).")
    healthy_s: float
    degraded_s: float
    unhealthy_s: float
    unknown_s: float
    maintenance_s: float
    latency_avg_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


class CheckRead(ResponseSchema):
    checked_at: datetime
    status: ComponentStatus
    latency_ms: float | None
    message: str
    details: dict[str, Any]


class ComponentHistory(ResponseSchema):
    component: ComponentSummary
    range: HistoryRange
    bucket: Literal["hour", "day"]
    window_start: datetime
    window_end: datetime
    uptime_percent: float | None = Field(description="Over the whole range, from the buckets.")
    points: list[HistoryPoint] = Field(description="Oldest first; buckets with no data left out.")
    incidents: list[Incident] = Field(description="Unhealthy runs that overlap the range.")
    recent_checks: list[CheckRead] = Field(description="The newest stored checks, newest first.")
