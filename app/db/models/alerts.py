"""Alerts, their notifications and maintenance windows.

An alert row is one episode of one rule on one component: raised, seen again, resolved.
Every notification is a delivery row written in the same transaction as the alert change,
so a restart neither re-sends what was delivered nor forgets what was due. A ``rule`` is
stored as a plain name, so a new rule needs no migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, enum_column, utcnow
from app.vocabulary.alerts import AlertSeverity, AlertState, DeliveryState


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_state", "key", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(32), index=True)  # a name of the alert rules
    component: Mapped[str] = mapped_column(String(200), index=True)
    severity: Mapped[AlertSeverity] = mapped_column(enum_column(AlertSeverity))
    state: Mapped[AlertState] = mapped_column(enum_column(AlertState), index=True)
    message: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    count: Mapped[int] = mapped_column(default=1)
    suppressed: Mapped[bool] = mapped_column(default=False)
    last_notified_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    incident_issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL")
    )


class AlertDelivery(Base):
    """One notification to one channel, retried with backoff until delivered or given up."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(500))
    event: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MaintenanceWindow(Base):
    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    components: Mapped[list[str]] = mapped_column(JSON)
    rules: Mapped[list[str]] = mapped_column(JSON)
    ended_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
