"""request days: hour rows of complete days rolled up, so a month reads 30 rows per endpoint

Hour rows gain ``rolled_up``; the ones already stored start as not rolled up, and the
flusher's next maintenance rolls their complete days up, batch by batch.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "self",
                "otlp-traces",
                "otlp-metrics",
                "agent",
                name="requestsource",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_days")),
    )
    op.create_index("ix_request_days_day", "request_days", ["day"])
    op.create_index(
        "ix_request_days_service_source_day", "request_days", ["service", "source", "day"]
    )
    with op.batch_alter_table("request_hours") as batch_op:
        batch_op.add_column(
            sa.Column("rolled_up", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index("ix_request_hours_rolled_up_hour", "request_hours", ["rolled_up", "hour"])


def downgrade() -> None:
    op.drop_index("ix_request_hours_rolled_up_hour", table_name="request_hours")
    with op.batch_alter_table("request_hours") as batch_op:
        batch_op.drop_column("rolled_up")
    op.drop_index("ix_request_days_service_source_day", table_name="request_days")
    op.drop_index("ix_request_days_day", table_name="request_days")
    op.drop_table("request_days")
