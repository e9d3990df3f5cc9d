"""health history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:22:25.208619
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "health_component_states",
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "system",
                "database",
                "mongodb",
                "redis",
                "http",
                name="componentkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "healthy",
                "degraded",
                "unhealthy",
                "unknown",
                name="componentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("since", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_checked_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_latency_ms", sa.Double(), nullable=True),
        sa.Column("last_message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("component", name=op.f("pk_health_component_states")),
    )
    op.create_table(
        "health_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "system",
                "database",
                "mongodb",
                "redis",
                "http",
                name="componentkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("hour", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("healthy_s", sa.Double(), nullable=False),
        sa.Column("degraded_s", sa.Double(), nullable=False),
        sa.Column("unhealthy_s", sa.Double(), nullable=False),
        sa.Column("unknown_s", sa.Double(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("status_changes", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Double(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.Column("latency_sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_hours")),
        sa.UniqueConstraint("component", "hour", name="uq_health_hours_component_hour"),
    )
    with op.batch_alter_table("health_hours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_health_hours_hour"), ["hour"], unique=False)

    op.create_table(
        "health_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "system",
                "database",
                "mongodb",
                "redis",
                "http",
                name="componentkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("started_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_incidents")),
    )
    with op.batch_alter_table("health_incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_incidents_component_started_at", ["component", "started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_health_incidents_ended_at"), ["ended_at"], unique=False
        )

    op.create_table(
        "health_sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("started_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "healthy",
                "degraded",
                "unhealthy",
                "unknown",
                name="componentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("cpu_percent", sa.Double(), nullable=True),
        sa.Column("memory_percent", sa.Double(), nullable=True),
        sa.Column("disk_percent", sa.Double(), nullable=True),
        sa.Column("load_1m", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_sweeps")),
        sa.UniqueConstraint("slot", name=op.f("uq_health_sweeps_slot")),
    )
    with op.batch_alter_table("health_sweeps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_sweeps_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "health_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "system",
                "database",
                "mongodb",
                "redis",
                "http",
                name="componentkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "healthy",
                "degraded",
                "unhealthy",
                "unknown",
                name="componentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("checked_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["health_sweeps.id"],
            name=op.f("fk_health_results_sweep_id_health_sweeps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_results")),
    )
    with op.batch_alter_table("health_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_results_checked_at"), ["checked_at"], unique=False
        )
        batch_op.create_index(
            "ix_health_results_component_checked_at", ["component", "checked_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_health_results_sweep_id"), ["sweep_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("health_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_results_sweep_id"))
        batch_op.drop_index("ix_health_results_component_checked_at")
        batch_op.drop_index(batch_op.f("ix_health_results_checked_at"))

    op.drop_table("health_results")
    with op.batch_alter_table("health_sweeps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_sweeps_started_at"))

    op.drop_table("health_sweeps")
    with op.batch_alter_table("health_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_incidents_ended_at"))
        batch_op.drop_index("ix_health_incidents_component_started_at")

    op.drop_table("health_incidents")
    with op.batch_alter_table("health_hours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_hours_hour"))

    op.drop_table("health_hours")
    op.drop_table("health_component_states")
