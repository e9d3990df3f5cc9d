"""indexes made for text search of issues: trigrams of titles and descriptions

``GET /issues?q=`` finds a case-insensitive substring of the title or the description, so
the index must know every substring, not words: trigrams. PostgreSQL gets a GIN index with
pg_trgm's operator class on both columns, which serves ILIKE as it stands. SQLite gets
``issue_search``, an FTS5 table with the trigram tokenizer over the issues' own rows
(external content: the text is not stored twice), kept in step by three triggers.
Both are filled from the rows already stored.

Should the PostgreSQL server lack pg_trgm (it ships in the standard contrib package), the
index is left out with a warning: search answers the same, scanning as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00.000000
"""

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")

_TRIGRAM_INDEX = "ix_issues_text_trgm"
_SQLITE_TRIGGERS = ("issue_search_insert", "issue_search_delete", "issue_search_update")
# An external-content table takes a deletion as a 'delete' row carrying the old text.
_FORGET_OLD = (
    "INSERT INTO issue_search (issue_search, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description);"
)
_INDEX_NEW = (
    "INSERT INTO issue_search (rowid, title, description) "
    "VALUES (new.id, new.title, new.description);"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm stays: other databases' objects may use it, and it costs nothing unused.
        op.execute(f"DROP INDEX IF EXISTS {_TRIGRAM_INDEX}")
        return
    for trigger in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS issue_search")


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():  # a failure must not abort the migration's transaction
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as error:
        logger.warning(
            "pg_trgm is not available (%s): issue search will scan instead of using an index",
            str(error.orig).strip().splitlines()[0],
        )
        return
    op.execute(
        f"CREATE INDEX {_TRIGRAM_INDEX} ON issues "
        "USING gin (title gin_trgm_ops, description gin_trgm_ops)"
    )


def _upgrade_sqlite() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE issue_search USING fts5("
        "title, description, content='issues', content_rowid='id', tokenize='trigram')"
    )
    op.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")
    insert, delete, update = _SQLITE_TRIGGERS
    op.execute(f"CREATE TRIGGER {insert} AFTER INSERT ON issues BEGIN {_INDEX_NEW} END")
    op.execute(f"CREATE TRIGGER {delete} AFTER DELETE ON issues BEGIN {_FORGET_OLD} END")
    # Only a change of the text reindexes; a status move or an assignment costs nothing here.
    op.execute(
        f"CREATE TRIGGER {update} AFTER UPDATE OF title, description ON issues "
        f"BEGIN {_FORGET_OLD} {_INDEX_NEW} END"
    )
