"""request metrics: per-minute rows per process and hourly rollups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:37:58.198302
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column(
            "status_class",
            sa.Enum(
                "1xx",
                "2xx",
                "3xx",
                "4xx",
                "5xx",
                name="statusclass",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum_ms", sa.Double(), nullable=False),
        sa.Column("max_ms", sa.Double(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.Column("exemplars", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_hours")),
    )
    with op.batch_alter_table("request_hours", schema=None) as batch_op:
        batch_op.create_index("ix_request_hours_hour", ["hour"], unique=False)

    op.create_table(
        "request_minutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=64), nullable=False),
        sa.Column("minute", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column(
            "status_class",
            sa.Enum(
                "1xx",
                "2xx",
                "3xx",
                "4xx",
                "5xx",
                name="statusclass",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum_ms", sa.Double(), nullable=False),
        sa.Column("max_ms", sa.Double(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.Column("exemplars", sa.JSON(), nullable=False),
        sa.Column("rolled_up", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_minutes")),
    )
    with op.batch_alter_table("request_minutes", schema=None) as batch_op:
        batch_op.create_index("ix_request_minutes_minute", ["minute"], unique=False)
        batch_op.create_index(
            "ix_request_minutes_rolled_up_minute", ["rolled_up", "minute"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("request_minutes", schema=None) as batch_op:
        batch_op.drop_index("ix_request_minutes_rolled_up_minute")
        batch_op.drop_index("ix_request_minutes_minute")

    op.drop_table("request_minutes")
    with op.batch_alter_table("request_hours", schema=None) as batch_op:
        batch_op.drop_index("ix_request_hours_hour")

    op.drop_table("request_hours")
