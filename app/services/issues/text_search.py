"""Finding issues by text: a case-insensitive substring of a title or description.

What matches is the ILIKE predicate ``contains`` builds, on either store; the indexes of
migration 0009 only make it cheap. PostgreSQL's trigram GIN index serves ILIKE as it
stands. On SQLite, the FTS5 trigram table ``issue_search`` names the candidates and
``contains`` still decides among them, so the index can only narrow the rows read, never
change the answer (FTS5 folds the case of every letter; SQLite's ILIKE folds ASCII only,
and stays the rule). A trigram index knows nothing of texts shorter than three characters:
those are read by scanning, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, literal_column, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from app.db.models import Issue
from app.db.models.issues import issue_search

TRIGRAM = 3
Statement = TypeVar("Statement", bound=Select[*tuple[Any, ...]])
Column = InstrumentedAttribute[str]
TEXT_COLUMNS: tuple[Column, ...] = (Issue.title, Issue.description)


def _escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character itself) taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(texts: Sequence[str], columns: Sequence[Column] = TEXT_COLUMNS) -> ColumnElement[bool]:
    """Issues where any of ``columns`` holds any of ``texts``, ignoring case: the rule."""
    return or_(
        *(
            column.ilike(f"%{_escape_like(text)}%", escape="\\")
            for text in texts
            for column in columns
        )
    )


def names_candidates(texts: Sequence[str], dialect: str) -> bool:
    """Whether SQLite's trigram table names the candidates (every text long enough)."""
    return dialect == "sqlite" and bool(texts) and min(map(len, texts)) >= TRIGRAM


def _fts5_query(texts: Sequence[str], columns: Sequence[Column]) -> str:
    """An FTS5 query for any of ``texts`` as a literal phrase, in ``columns`` only."""
    phrases = " OR ".join('"{}"'.format(text.replace('"', '""')) for text in texts)
    names = " ".join(column.key for column in columns)
    return f"{{{names}}} : ({phrases})"


def _in_index(texts: Sequence[str], columns: Sequence[Column]) -> ColumnElement[bool]:
    return literal_column(issue_search.name).match(_fts5_query(texts, columns))


def matching(
    texts: Sequence[str], dialect: str, columns: Sequence[Column] = TEXT_COLUMNS
) -> ColumnElement[bool]:
    """``contains``, restricted first to the candidates the store's index names."""
    rule = contains(texts, columns)
    if not names_candidates(texts, dialect):
        return rule
    candidates = select(issue_search.c.rowid).where(_in_index(texts, columns))
    return and_(Issue.id.in_(candidates), rule)


def newest_matching(
    statement: Statement,
    texts: Sequence[str],
    dialect: str,
    columns: Sequence[Column] = TEXT_COLUMNS,
) -> Statement:
    """``statement`` over the issues that match, newest first, for a caller who wants the
    first few: on SQLite the index hands its candidates over newest first, so reading stops
    once the limit is met, however many older issues match."""
    rule = contains(texts, columns)
    if not names_candidates(texts, dialect):
        return statement.where(rule).order_by(Issue.id.desc())
    return (
        statement.select_from(issue_search)
        .join(Issue, Issue.id == issue_search.c.rowid)
        .where(_in_index(texts, columns), rule)
        .order_by(issue_search.c.rowid.desc())
    )
