"""issues by status and update: one index serves a status filter sorted by the last change

A search with filters meets the trigram table's candidates with the filters and keeps each
match's sort key on the way (one pass for the total and the page's ids). Filtered by status,
the desk's commonest filter, and sorted by update, that pass then reads this index alone,
never the issues' rows, as ``ix_issues_status_created_at`` already serves the sort by
creation; the desk's lists by status sorted by update walk it too.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 12:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_issues_status_updated_at", "issues", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_issues_status_updated_at", table_name="issues")
