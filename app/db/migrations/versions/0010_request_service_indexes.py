"""request tallies indexed by service and source, so the services are listed without a scan

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_request_minutes_service_source_minute",
        "request_minutes",
        ["service", "source", "minute"],
    )
    op.create_index(
        "ix_request_hours_service_source_hour", "request_hours", ["service", "source", "hour"]
    )


def downgrade() -> None:
    op.drop_index("ix_request_hours_service_source_hour", table_name="request_hours")
    op.drop_index("ix_request_minutes_service_source_minute", table_name="request_minutes")
