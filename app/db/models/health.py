"""Health history: every sweep and its results, the running state of each component,
hourly time-weighted rollups, the days they are rolled up into, and the incidents they
add up to.

Raw results are kept for a configurable time (30 days); the hourly rollups, which hold the
seconds each component spent in each status and a latency sketch, keep 90-day uptime
answerable long after the raw rows are gone. ``slot`` on a sweep is the lease: the first
process to claim an interval's slot runs that sweep, every other one skips it. A ``kind``
is stored as a plain name, validated by the checks' registry, so a new kind of check needs
no migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, enum_column, utcnow
from app.vocabulary.health import ComponentStatus

# The pseudo-component whose history is the worst-of status of every sweep.
OVERALL = "*"


class HealthSweep(Base):
    __tablename__ = "health_sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    slot: Mapped[int | None] = mapped_column(unique=True)
    source: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    duration_ms: Mapped[float | None]
    status: Mapped[ComponentStatus | None] = mapped_column(enum_column(ComponentStatus))
    cpu_percent: Mapped[float | None]
    memory_percent: Mapped[float | None]
    disk_percent: Mapped[float | None]
    load_1m: Mapped[float | None]


class HealthResult(Base):
    __tablename__ = "health_results"
    __table_args__ = (Index("ix_health_results_component_checked_at", "component", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("health_sweeps.id", ondelete="CASCADE"), index=True
    )
    component: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # a name of the checks' registry
    status: Mapped[ComponentStatus] = mapped_column(enum_column(ComponentStatus))
    latency_ms: Mapped[float | None]
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    checked_at: Mapped[datetime] = mapped_column(index=True)


class ComponentState(Base):
    """Where each component stands now: the anchor of the time-weighted accounting."""

    __tablename__ = "health_component_states"

    component: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # a name of the checks' registry
    status: Mapped[ComponentStatus] = mapped_column(enum_column(ComponentStatus))
    since: Mapped[datetime]
    last_checked_at: Mapped[datetime]
    last_latency_ms: Mapped[float | None]
    last_message: Mapped[str] = mapped_column(Text, default="")


class HealthSums:
    """Seconds in each status, checks, failures and a latency sketch over some stretch."""

    id: Mapped[int] = mapped_column(primary_key=True)
    component: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # a name of the checks' registry
    healthy_s: Mapped[float] = mapped_column(default=0.0)
    degraded_s: Mapped[float] = mapped_column(default=0.0)
    unhealthy_s: Mapped[float] = mapped_column(default=0.0)
    unknown_s: Mapped[float] = mapped_column(default=0.0)
    maintenance_s: Mapped[float] = mapped_column(default=0.0, server_default="0")  # not uptime
    checks: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    status_changes: Mapped[int] = mapped_column(default=0)
    latency_sum_ms: Mapped[float] = mapped_column(default=0.0)
    latency_count: Mapped[int] = mapped_column(default=0)
    latency_sketch: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class HealthHour(HealthSums, Base):
    """One component's hour. ``rolled_up`` once a ``HealthDay`` row holds it: readers of
    whole days read that row instead (the hour row stays, for hourly series)."""

    __tablename__ = "health_hours"
    __table_args__ = (
        UniqueConstraint("component", "hour", name="uq_health_hours_component_hour"),
        Index("ix_health_hours_rolled_up_hour", "rolled_up", "hour"),
    )

    hour: Mapped[datetime] = mapped_column(index=True)
    rolled_up: Mapped[bool] = mapped_column(default=False, server_default=false())


class HealthDay(HealthSums, Base):
    """Some rolled-up hours of one component's (UTC) day, summed. A day may have several
    rows (hours rolled up in separate batches); readers add them up."""

    __tablename__ = "health_days"
    __table_args__ = (Index("ix_health_days_component_day", "component", "day"),)

    day: Mapped[datetime] = mapped_column(index=True)


class HealthIncident(Base):
    """A stretch of time a component was unhealthy; open while ``ended_at`` is null."""

    __tablename__ = "health_incidents"
    __table_args__ = (Index("ix_health_incidents_component_started_at", "component", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    component: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # a name of the checks' registry
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(index=True)
    message: Mapped[str] = mapped_column(Text, default="")
