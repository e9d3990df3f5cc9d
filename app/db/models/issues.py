"""The issue desk: issues, their labels, comments and the history of every change.

Stage entry times and the durations measured at each stage are kept on the issue, so the
statistics are plain aggregates; the history rows keep every change so those figures can
be recomputed and audited.

Text search has an index of its own on each store, made by migrations 0009, 0012 and 0014
and described by no model: PostgreSQL a trigram GIN index on issues and ``issue_texts``, a
folded copy of the texts with the times a page sorts by, that a trigger keeps in step;
SQLite ``issue_search``, an FTS5 trigram table over the issues' rows that triggers keep in
step. A later SQLite migration that rebuilds ``issues`` (``batch_alter_table``) drops those
triggers with the old table, so it must create them again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, String, Text, column, table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, UTCDateTime, enum_column, utcnow
from app.db.models.users import User
from app.vocabulary.issues import IssueStatus, IssueType, Priority, Resolution

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType


class Issue(Base):
    __tablename__ = "issues"
    __table_args__ = (
        Index("ix_issues_status_created_at", "status", "created_at"),
        # A search by status sorted by update reads its matches' keys from here (0015).
        Index("ix_issues_status_updated_at", "status", "updated_at"),
        Index("ix_issues_reporter_id_created_at", "reporter_id", "created_at"),
        Index("ix_issues_assignee_id_status", "assignee_id", "status"),
        # Covers the statistics' counts by status, type, priority and resolution.
        Index("ix_issues_breakdown", "status", "issue_type", "priority", "resolution"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    issue_type: Mapped[IssueType] = mapped_column(enum_column(IssueType), index=True)
    priority: Mapped[Priority] = mapped_column(enum_column(Priority), index=True)
    status: Mapped[IssueStatus] = mapped_column(enum_column(IssueStatus))
    resolution: Mapped[Resolution | None] = mapped_column(enum_column(Resolution))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id"), index=True)

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    triaged_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    verified_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    # The resolution clock: due time, pauses while waiting on the reporter.
    sla_due_at: Mapped[datetime]
    waiting_since: Mapped[datetime | None]
    paused_seconds: Mapped[float] = mapped_column(default=0.0)

    # Durations measured when each stage was reached (seconds, pauses excluded). Indexed
    # so that SQLite reads their median and p90 by index position instead of sorting.
    triage_seconds: Mapped[float | None] = mapped_column(index=True)
    first_response_seconds: Mapped[float | None] = mapped_column(index=True)
    resolution_seconds: Mapped[float | None] = mapped_column(index=True)
    resolved_within_target: Mapped[bool | None]

    reopen_count: Mapped[int] = mapped_column(default=0)
    verification_rejections: Mapped[int] = mapped_column(default=0)
    verification_count: Mapped[int] = mapped_column(default=0)

    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id], lazy="raise")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="raise")
    labels: Mapped[list[IssueLabel]] = relationship(
        cascade="all, delete-orphan", order_by="IssueLabel.name", lazy="raise"
    )


class IssueLabel(Base):
    __tablename__ = "issue_labels"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class IssueComment(Base):
    __tablename__ = "issue_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="raise")


class IssueEvent(Base):
    """One change of one issue: who, when, which field, from what to what."""

    __tablename__ = "issue_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)

    actor: Mapped[User | None] = relationship(lazy="raise")


# SQLite's text index, for queries: the rowid is the issue's id.
issue_search = table("issue_search", column("rowid", Integer))
# PostgreSQL's folded copy of the texts, with the times a page sorts by (migrations 0012
# and 0014): a search counts its matches and orders its page from the copy alone.
issue_texts = table(
    "issue_texts",
    column("issue_id", Integer),
    column("title", Text),
    column("description", Text),
    column("created_at", UTCDateTime()),
    column("updated_at", UTCDateTime()),
)
_TEXT_SEARCH_INDEX = "ix_issues_text_trgm"


def compared_with_models(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Alembic's ``include_name``: everything but the text search objects no model describes
    (the trigram indexes, ``issue_search`` and the shadow tables FTS5 keeps beside it,
    ``issue_texts``)."""
    if name is None:
        return True
    fts5_table = name == issue_search.name or name.startswith(f"{issue_search.name}_")
    return not fts5_table and name not in (_TEXT_SEARCH_INDEX, issue_texts.name)
