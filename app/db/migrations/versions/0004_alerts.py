"""alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:30:48.040863
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Time under a maintenance window is kept apart so that it stays out of uptime.
    with op.batch_alter_table("health_hours", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("maintenance_s", sa.Double(), nullable=False, server_default="0")
        )

    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("starts_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recurrence", sa.JSON(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("ended_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_maintenance_windows_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column(
            "rule",
            sa.Enum(
                "component_down",
                "flapping",
                "slow_dependency",
                "resource",
                "own_network",
                "endpoint_latency",
                "error_rate",
                "error_budget_burn",
                name="alertrule",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("component", sa.String(length=200), nullable=False),
        sa.Column(
            "severity",
            sa.Enum(
                "warning",
                "critical",
                name="alertseverity",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "firing",
                "resolved",
                name="alertstate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("first_seen", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("last_notified_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("incident_issue_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_issue_id"],
            ["issues.id"],
            name=op.f("fk_alerts_incident_issue_id_issues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_component"), ["component"], unique=False)
        batch_op.create_index("ix_alerts_key_state", ["key", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_rule"), ["rule"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_state"), ["state"], unique=False)

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=500), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "delivered",
                "failed",
                name="deliverystate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            "ix_alert_deliveries_state_next", ["state", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("health_hours", schema=None) as batch_op:
        batch_op.drop_column("maintenance_s")

    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_deliveries_state_next")
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_alert_id"))

    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_state"))
        batch_op.drop_index(batch_op.f("ix_alerts_rule"))
        batch_op.drop_index("ix_alerts_key_state")
        batch_op.drop_index(batch_op.f("ix_alerts_component"))

    op.drop_table("alerts")
    op.drop_table("maintenance_windows")
