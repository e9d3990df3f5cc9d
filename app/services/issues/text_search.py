"""Finding issues by text: a case-insensitive substring of a title or description.

A search answers a page and the total of its matches, and each store gets both from an
index made for text search (migrations 0009, 0012 and 0014):

* PostgreSQL: the rule is ILIKE. A total must recheck every match its trigram index names,
  and the same read yields the page's ids in the page's order (``_in_one_pass``). Without
  other filters it reads ``issue_texts``, a copy of the texts already folded by ``lower()``
  beside the times a page sorts by, with a trigram index of its own, in narrower rows than
  the issues'; on a multibyte database ILIKE is ``lower() LIKE lower()``, the same rule.
  With filters it reads the issues, through their own trigram index (0009).
* SQLite: for texts of three characters or more the FTS5 trigram table ``issue_search``
  decides: its phrase query is an exact substring match, folding the case of every letter
  (SQLite's own LIKE folds ASCII only), so a count reads the index alone. With other
  filters the candidates are met with them in one pass too, which keeps each match's sort
  key (read from the filters' index where it holds the key, as ``(status, updated_at)``
  does, migration 0015). A trigram index knows nothing of shorter texts: those are read by
  scanning with ILIKE, as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.models import Issue
from app.db.models.issues import issue_search, issue_texts

TRIGRAM = 3
# SQLite: what reading one candidate (a lookup of its id) costs against walking one entry
# of the page's order (an index entry checked against the candidates' set), measured at
# 100,000 issues.
CANDIDATE_COST = 3.0
# Candidates fewer than this share of the desk are looked up to meet the other filters;
# more, and the other filters' own index drives the meeting.
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
    # Folded once, by a subquery: as an expression, ``lower()`` ran again for every row
    # rechecked. The backslash is PostgreSQL's own escape character for LIKE.
    pattern = select(func.lower(f"%{_escape_like(text)}%")).scalar_subquery()
    return or_(issue_texts.c.title.like(pattern), issue_texts.c.description.like(pattern))


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
    """What a search found: the total, and how to read the page (in its own order)."""

    total: int
    matches: ColumnElement[bool]  # the filter picking the matches for the page
    offset: int  # how many of those, in that order, the page skips


async def search(
    session: AsyncSession,
    text: str,
    where: Sequence[ColumnElement[bool]],
    *,
    sort_key: ColumnElement[Any],
    descending: bool,
    in_sort_order: bool,
    offset: int,
    limit: int,
) -> Found:
    """How many issues passing ``where`` hold ``text``, and how to read the page of them
    sorted by ``sort_key`` (``in_sort_order``: an index walks that order) from ``offset``."""
    page = _Page(descending, offset, limit)
    if session.get_bind().dialect.name == "postgresql":
        matches = _postgresql_matches(text, where, sort_key)
        return await _in_one_pass(session, matches, page, json_ids=False)
    if not names_candidates([text], "sqlite"):
        rule = contains([text])  # a scan: walking or not, the same rule
        return Found(await count_issues(session, [*where, rule]), rule, offset)
    named = _candidates(text)
    desk, candidates = await _sqlite_sizes(session, named)
    # Met along another index (``id + 0`` keeps the id's own out), or looked up by id.
    met, looked_up = (Issue.id + 0).in_(named), Issue.id.in_(named)
    if where:
        # The total must meet every candidate with the filters anyway: the page's ids and
        # keys are kept on the way (an index of the filters and the key holds both).
        few = candidates <= desk * FEW_CANDIDATES
        matches = select(Issue.id, sort_key).where(*where, looked_up if few else met)
        return await _in_one_pass(session, matches, page, json_ids=True)
    walk = in_sort_order and (offset + limit) * desk < CANDIDATE_COST * candidates * candidates
    return Found(candidates, met if walk else looked_up, offset)


class _Page(NamedTuple):
    """The page a search answers: which way its key runs, where it starts and ends."""

    descending: bool
    offset: int
    limit: int


def _postgresql_matches(
    text: str, where: Sequence[ColumnElement[bool]], sort_key: ColumnElement[Any]
) -> Select[tuple[int, Any]]:
    """The matches' ids and sort keys. Without other filters they are read from the folded
    copy, whose rows are narrower and carry the sort key (every issue has its one copy);
    with filters, from the issues, where PostgreSQL ANDs the filters' indexes with the
    trigram index before reading any row."""
    copied_key = issue_texts.c.get(sort_key.key or "")
    if not where and copied_key is not None:
        return select(issue_texts.c.issue_id, copied_key).where(_in_folded_copy(text))
    return select(Issue.id, sort_key).where(*where, contains([text]))


async def _in_one_pass(
    session: AsyncSession, read: Select[tuple[int, Any]], page: _Page, *, json_ids: bool
) -> Found:
    """The total and the page's ids from one read of the matches (``read``: their ids and
    sort keys); SQLite hands the ids over as a JSON array (``json_ids``), PostgreSQL as an
    array.

    The total rechecks every match, so reading them is paid anyway; keeping each one's id
    and sort key on the way costs little more, and leaves only the page's issues to read,
    by id."""
    matches = read.cte("matches").prefix_with("MATERIALIZED")  # read once, used twice
    match_id, key = matches.c
    ordered = (key.desc(), match_id.desc()) if page.descending else (key.asc(), match_id.asc())
    ids = select(match_id).order_by(*ordered).limit(page.limit).offset(page.offset).subquery()
    gathered = func.json_group_array(ids.c[0]) if json_ids else func.array_agg(ids.c[0])
    total, listed = (
        await session.execute(
            select(
                select(func.count()).select_from(matches).scalar_subquery(),
                select(gathered).scalar_subquery(),
            )
        )
    ).one()
    page_ids = json.loads(listed) if json_ids else listed or []
    return Found(total, Issue.id.in_(page_ids), 0)


def _candidates(text: str) -> Select[tuple[int]]:
    """The ids SQLite's trigram table names for ``text``."""
    return select(issue_search.c.rowid).where(_in_index([text], TEXT_COLUMNS))


async def _sqlite_sizes(session: AsyncSession, named: Select[tuple[int]]) -> tuple[int, int]:
    """The desk's size and how many candidates the trigram table ``named``, in one
    statement: on SQLite each one is a round trip through the driver's thread."""
    sizes = select(
        select(func.max(Issue.id)).scalar_subquery(),
        select(func.count()).select_from(named.subquery()).scalar_subquery(),
    )
    desk, candidates = (await session.execute(sizes)).one()
    return desk or 0, candidates or 0
