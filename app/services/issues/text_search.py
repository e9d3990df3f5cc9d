"""Finding issues by text: a case-insensitive substring of a title or description.

A search answers a page and the total of its matches, and each store gets both from an
index made for text search (migrations 0009 and 0012):

* PostgreSQL: the rule is ILIKE. pg_trgm's GIN index on the issues serves the page, which
  reads the issues it returns anyway, and a total with other filters. A total of the text
  alone must look at every match, so it reads ``issue_texts`` instead, a copy of the texts
  already folded by ``lower()`` with a trigram index of its own, in narrower rows than the
  issues'; on a multibyte database ILIKE is ``lower() LIKE lower()``, the same rule.
* SQLite: for texts of three characters or more the FTS5 trigram table ``issue_search``
  decides: its phrase query is an exact substring match, folding the case of every letter
  (SQLite's own LIKE folds ASCII only), so a count reads the index alone. A trigram index
  knows nothing of shorter texts: those are read by scanning with ILIKE, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Interval, Select, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.models import Issue
from app.db.models.issues import issue_search, issue_texts

TRIGRAM = 3
# What reading one candidate costs against walking one entry of the page's order, measured
# at 100,000 issues. SQLite walks an index checking each entry against the candidates'
# set, and reads a candidate by a lookup of its id; PostgreSQL reads and rechecks an
# issue's row either way.
CANDIDATE_COST = {"sqlite": 3.0, "postgresql": 1.0}
# Candidates fewer than this share of the desk are looked up for a count with filters;
# more, and the other filters' own index drives it.
FEW_CANDIDATES = 1 / 20
Statement = TypeVar("Statement", bound=Select[*tuple[Any, ...]])
Column = InstrumentedAttribute[str]
TEXT_COLUMNS: tuple[Column, ...] = (Issue.title, Issue.description)


def _escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character itself) taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(texts: Sequence[str], columns: Sequence[Column] = TEXT_COLUMNS) -> ColumnElement[bool]:
    """Issues where any of ``columns`` holds any of ``texts``, ignoring case: ILIKE's rule."""
    return or_(
        *(
            column.ilike(f"%{_escape_like(text)}%", escape="\\")
            for text in texts
            for column in columns
        )
    )


def names_candidates(texts: Sequence[str], dialect: str) -> bool:
    """Whether SQLite's trigram table decides (every text long enough)."""
    return dialect == "sqlite" and bool(texts) and min(map(len, texts)) >= TRIGRAM


def _fts5_query(texts: Sequence[str], columns: Sequence[Column]) -> str:
    """An FTS5 query for any of ``texts`` as a literal phrase, in ``columns`` only."""
    phrases = " OR ".join('"{}"'.format(text.replace('"', '""')) for text in texts)
    names = " ".join(column.key for column in columns)
    return f"{{{names}}} : ({phrases})"


def _in_index(texts: Sequence[str], columns: Sequence[Column]) -> ColumnElement[bool]:
    return literal_column(issue_search.name).match(_fts5_query(texts, columns))


def _in_folded_copy(text: str) -> ColumnElement[bool]:
    pattern = func.lower(f"%{_escape_like(text)}%")
    return or_(
        issue_texts.c.title.like(pattern, escape="\\"),
        issue_texts.c.description.like(pattern, escape="\\"),
    )


def newest_matching(
    statement: Statement,
    texts: Sequence[str],
    dialect: str,
    columns: Sequence[Column] = TEXT_COLUMNS,
) -> Statement:
    """``statement`` over the issues that match, newest first, for a caller who wants the
    first few: on SQLite the index hands its candidates over newest first, so reading stops
    once the limit is met, however many older issues match."""
    if not names_candidates(texts, dialect):
        return statement.where(contains(texts, columns)).order_by(Issue.id.desc())
    return (
        statement.select_from(issue_search)
        .join(Issue, Issue.id == issue_search.c.rowid)
        .where(_in_index(texts, columns))
        .order_by(issue_search.c.rowid.desc())
    )


async def count_issues(session: AsyncSession, where: Sequence[ColumnElement[bool]]) -> int:
    counted = select(func.count()).select_from(Issue).where(*where)
    return await session.scalar(counted) or 0


class Found(NamedTuple):
    """What a search found: the total, and how to read the page."""

    total: int
    matches: ColumnElement[bool]  # the filter picking the matches for the page
    sort_key: ColumnElement[Any]  # the page's order, as the page should be read


async def search(
    session: AsyncSession,
    text: str,
    where: Sequence[ColumnElement[bool]],
    *,
    sort_key: ColumnElement[Any],
    in_sort_order: bool,
    page_end: int,
) -> Found:
    """How many issues passing ``where`` hold ``text``, and how to read a page of them
    sorted by ``sort_key`` (``in_sort_order``: an index walks that order) ending at
    ``page_end``.

    The counts choose how: walking the order until the page ends reads about
    ``page_end * desk / total`` issues, reading every candidate and sorting them reads
    the candidates, and neither planner knows how many the text index names."""
    dialect = session.get_bind().dialect.name
    desk = await session.scalar(select(func.max(Issue.id))) or 0
    if names_candidates([text], dialect):
        total, candidates, walked, read = await _sqlite_counts(session, text, where, desk)
    else:
        walked = read = contains([text])
        total = candidates = await _count_matching(session, text, where, dialect)
    walk = in_sort_order and page_end * desk < CANDIDATE_COST[dialect] * total * candidates
    if walk or not in_sort_order or dialect != "postgresql":
        return Found(total, walked if walk else read, sort_key)
    # Hidden from its index, the order leaves PostgreSQL the text index's candidates.
    return Found(total, read, sort_key + literal(timedelta(0), Interval()))


async def _count_matching(
    session: AsyncSession, text: str, where: Sequence[ColumnElement[bool]], dialect: str
) -> int:
    if dialect == "postgresql" and not where:  # every issue has its one copy
        copies = select(issue_texts.c.issue_id).where(_in_folded_copy(text)).subquery()
        return await session.scalar(select(func.count()).select_from(copies)) or 0
    # With other filters, PostgreSQL ANDs their index with the trigram index on the issues
    # before reading any row: fewer rows read than the copy's matches.
    return await count_issues(session, [*where, contains([text])])


async def _sqlite_counts(
    session: AsyncSession, text: str, where: Sequence[ColumnElement[bool]], desk: int
) -> tuple[int, int, ColumnElement[bool], ColumnElement[bool]]:
    """The total, the candidates the trigram table names, and the filter that meets them
    along another index (``id + 0`` keeps the id's own out) or looks them up by id."""
    matches = select(issue_search.c.rowid).where(_in_index([text], TEXT_COLUMNS))
    candidates = await session.scalar(select(func.count()).select_from(matches.subquery())) or 0
    met, looked_up = (Issue.id + 0).in_(matches), Issue.id.in_(matches)
    if not where:
        return candidates, candidates, met, looked_up
    few = candidates <= desk * FEW_CANDIDATES
    total = await count_issues(session, [*where, looked_up if few else met])
    return total, candidates, met, looked_up
