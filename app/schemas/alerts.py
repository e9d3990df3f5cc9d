"""The contract of alerting: rule settings, alerts, deliveries and maintenance windows."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.base import Instant, Offset, RequestSchema, ResponseSchema
from app.vocabulary.alerts import AlertSeverity, AlertState, DeliveryState, RuleName


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BurnWindow(_Config):
    """A multi-window burn-rate pair, as in the SRE workbook: both windows must burn."""

    long_minutes: int = Field(gt=0)
    short_minutes: int = Field(gt=0)
    burn_rate: float = Field(gt=0)
    severity: AlertSeverity


class AlertRules(_Config):
    """When alerts fire and clear; every field has a sensible default."""

    fail_after: int = Field(default=3, ge=1, description="Consecutive failing sweeps to fire.")
    fail_window: int = Field(default=5, ge=1, description="...or this many failures of the last")
    fail_threshold: int = Field(default=4, ge=1, description="...fail_window sweeps.")
    clear_after: int = Field(default=2, ge=1, description="Consecutive healthy sweeps to clear.")
    flap_window: int = Field(default=10, ge=2)
    flap_changes: int = Field(default=4, ge=2, description="Status flips in flap_window.")
    slow_latency_ms: float = Field(default=1000.0, gt=0)
    slow_minutes: float = Field(default=5.0, gt=0)
    cpu_percent: float = Field(default=90.0, gt=0, le=100)
    memory_percent: float = Field(default=90.0, gt=0, le=100)
    disk_percent: float = Field(default=90.0, gt=0, le=100)
    resource_minutes: float = Field(default=10.0, gt=0)
    p95_ms: float = Field(default=2000.0, gt=0)
    error_rate: float = Field(default=0.05, gt=0, le=1)
    performance_window_minutes: int = Field(default=10, ge=1)
    min_requests: int = Field(default=50, ge=1)
    # The error budgets these pairs defend come from the objectives (Settings.objectives).
    burn_windows: tuple[BurnWindow, ...] = (
        BurnWindow(
            long_minutes=60, short_minutes=5, burn_rate=14.4, severity=AlertSeverity.CRITICAL
        ),
        BurnWindow(
            long_minutes=360, short_minutes=30, burn_rate=6.0, severity=AlertSeverity.WARNING
        ),
    )
    repeat_minutes: float = Field(default=60.0, gt=0, description="Re-send a firing alert.")
    own_network_min_targets: int = Field(default=3, ge=2)
    incident_issues: bool = Field(default=True, description="Open an incident issue when down.")

    @model_validator(mode="after")
    def _threshold_fits_window(self) -> Self:
        if self.fail_threshold > self.fail_window:
            raise ValueError("fail_threshold cannot exceed fail_window")
        return self


class Recurrence(_Config):
    """Every week on these days, from ``start`` (UTC) for ``duration_minutes``."""

    weekdays: list[int] = Field(min_length=1, description="0 = Monday … 6 = Sunday")
    start: time
    duration_minutes: int = Field(gt=0, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _days(self) -> Self:
        if any(not 0 <= day <= 6 for day in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return self


class MaintenanceWindowCreate(RequestSchema):
    """A one-off window (``starts_at``/``ends_at``) or a weekly one (``recurrence``)."""

    name: str = Field(min_length=1, max_length=100)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    recurrence: Recurrence | None = None
    components: list[str] = Field(default_factory=list, description="Empty: every component.")
    rules: list[RuleName] = Field(default_factory=list, description="Empty: every rule.")

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        one_off = self.starts_at is not None or self.ends_at is not None
        if one_off == (self.recurrence is not None):
            raise ValueError("give either starts_at and ends_at, or recurrence")
        if one_off:
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs both starts_at and ends_at")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        return self


class MaintenanceWindowRead(ResponseSchema):
    id: int | None = Field(description="None for windows from the configuration.")
    name: str
    starts_at: datetime | None
    ends_at: datetime | None
    recurrence: Recurrence | None
    components: list[str]
    rules: list[RuleName]
    ended_at: datetime | None
    active: bool


class AlertRead(ResponseSchema):
    id: int
    key: str
    rule: RuleName
    component: str
    severity: AlertSeverity
    state: AlertState
    message: str
    figures: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    count: int
    suppressed: bool = Field(description="Raised during a maintenance window: recorded, not sent.")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    incident_issue_id: int | None


class DeliveryRead(ResponseSchema):
    id: int
    alert_id: int | None
    channel: str
    event: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class AlertDetail(AlertRead):
    deliveries: list[DeliveryRead]


class AlertQuery(RequestSchema):
    state: AlertState | None = None
    rule: RuleName | None = None
    component: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=50, ge=1, le=200)
    offset: Offset = 0


class AlertPage(ResponseSchema):
    items: list[AlertRead]
    total: int


class TestNotification(RequestSchema):
    channel: str = Field(
        description="A configured channel, as listed (masked) by GET /alerts/channels."
    )


class ChannelRead(ResponseSchema):
    name: str
    kind: str
