"""issue texts sorted: PostgreSQL's folded copy carries each issue's created and updated times

A search's total must recheck every match, and its page was a second read of the issues
(walking an order or reading every candidate again). With the sort columns beside the
texts, one pass over the copy's matches gives the total and the ids of the page, ordered
as the page is: the issues are then read by id. The trigger now also follows a change of
``updated_at``, which every edit of an issue makes; the copy's own indexes do not cover it,
so its row is updated in place (a heap-only update).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 08:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = "issue_texts_keep"
_TRIGGER = "issue_texts_keep"
_INDEX = "ix_issue_texts_trgm"
_TEXTS = "lower(NEW.title), lower(NEW.description)"


def _keep(columns: str, values: str, updates: str, watched: str) -> None:
    """(Re)creates the trigger writing ``columns`` of the copy from each written issue."""
    op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER} ON issues")
    op.execute(
        f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN INSERT INTO issue_texts ({columns}) VALUES ({values}) "
        f"ON CONFLICT (issue_id) DO UPDATE SET {updates}; RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {_TRIGGER} AFTER INSERT OR UPDATE OF {watched} ON issues "
        f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    indexed = bind.exec_driver_sql(f"SELECT 1 FROM pg_indexes WHERE indexname = '{_INDEX}'")
    had_index = indexed.first() is not None
    # Written afresh, then indexed: cheaper than updating every row and its index entries.
    op.execute(f"DROP INDEX IF EXISTS {_INDEX}")
    op.execute("TRUNCATE issue_texts")
    op.execute(
        "ALTER TABLE issue_texts ADD COLUMN created_at timestamptz NOT NULL, "
        "ADD COLUMN updated_at timestamptz NOT NULL"
    )
    op.execute(
        "INSERT INTO issue_texts (issue_id, title, description, created_at, updated_at) "
        "SELECT id, lower(title), lower(description), created_at, updated_at FROM issues"
    )
    if had_index:
        op.execute(
            f"CREATE INDEX {_INDEX} ON issue_texts "
            "USING gin (title gin_trgm_ops, description gin_trgm_ops)"
        )
    _keep(
        "issue_id, title, description, created_at, updated_at",
        f"NEW.id, {_TEXTS}, NEW.created_at, NEW.updated_at",
        "title = EXCLUDED.title, description = EXCLUDED.description, "
        "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at",
        "title, description, created_at, updated_at",
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _keep(
        "issue_id, title, description",
        f"NEW.id, {_TEXTS}",
        "title = EXCLUDED.title, description = EXCLUDED.description",
        "title, description",
    )
    op.execute("ALTER TABLE issue_texts DROP COLUMN created_at, DROP COLUMN updated_at")
