"""health days: hour rows of complete days rolled up, so a month reads 30 rows per component

Hour rows gain ``rolled_up``; the ones already stored start as not rolled up, and the
monitor's next housekeeping rolls their complete days up, batch by batch.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("day", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("healthy_s", sa.Double(), nullable=False),
        sa.Column("degraded_s", sa.Double(), nullable=False),
        sa.Column("unhealthy_s", sa.Double(), nullable=False),
        sa.Column("unknown_s", sa.Double(), nullable=False),
        sa.Column("maintenance_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("status_changes", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Double(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.Column("latency_sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_days")),
    )
    op.create_index("ix_health_days_day", "health_days", ["day"])
    op.create_index("ix_health_days_component_day", "health_days", ["component", "day"])
    with op.batch_alter_table("health_hours") as batch_op:
        batch_op.add_column(
            sa.Column("rolled_up", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index("ix_health_hours_rolled_up_hour", "health_hours", ["rolled_up", "hour"])


def downgrade() -> None:
    op.drop_index("ix_health_hours_rolled_up_hour", table_name="health_hours")
    with op.batch_alter_table("health_hours") as batch_op:
        batch_op.drop_column("rolled_up")
    op.drop_index("ix_health_days_component_day", table_name="health_days")
    op.drop_index("ix_health_days_day", table_name="health_days")
    op.drop_table("health_days")
