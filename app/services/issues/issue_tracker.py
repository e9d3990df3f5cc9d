"""IssueTracker: the issue desk — reports, triage, assignment, the workflow, comments, stats.

One tracker serves one unit of work: it takes the session explicitly, only flushes, and
decides in ``get`` who may see an issue (a ``user`` sees only what they reported). Status
changes are conditional updates on the old status, so two concurrent moves of one issue
can never both apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from app.db.base import utcnow
from app.db.models import Issue, IssueComment, IssueEvent, IssueLabel, User
from app.schemas.issues import (
    CommentCreate,
    CommentRead,
    DuplicateCandidate,
    EventRead,
    IssueCreate,
    IssueCreated,
    IssueDetail,
    IssuePage,
    IssueQuery,
    IssueRead,
    IssueStatistics,
    IssueUpdate,
    StatisticsQuery,
    StatusChange,
)
from app.services.issues import duplicates, sla, text_search, workflow
from app.services.issues.statistics import IssueStatisticsQuery
from app.vocabulary.issues import DONE_STATUSES, IssueStatus, Priority

# Bounded so that duplicate detection costs the same on a desk of ten or a million issues.
DUPLICATE_CANDIDATES = 200
_EDITABLE_BY_REPORTER = frozenset({"title", "description"})
_PRIORITY_RANK = case({p.value: p.rank for p in Priority}, value=Issue.priority)


def _with_people(dialect: str) -> Select[Issue]:
    """Issues with their reporter, assignee and labels. On SQLite every query is a round
    trip through the driver's thread, costing more than the joined rows (measured on the
    desk's search: 3 to 6 ms a page); on PostgreSQL the two small selects measured no
    slower than the join."""
    if dialect == "sqlite":
        people = (joinedload(Issue.reporter, innerjoin=True), joinedload(Issue.assignee))
    else:
        people = (selectinload(Issue.reporter), selectinload(Issue.assignee))
    return select(Issue).options(*people, selectinload(Issue.labels))


class IssueTracker:
    """The issue desk's operations for one unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        targets: sla.ResolutionTargets,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.targets = targets
        self.clock = clock
        self.dialect = session.get_bind().dialect.name

    # Reading -------------------------------------------------------------------------

    def view(self, issue: Issue) -> IssueRead:
        """What a caller sees of an issue, with the clock's verdicts computed now."""
        now = self.clock()
        state = sla.ClockState(
            issue.status, issue.sla_due_at, issue.waiting_since, issue.resolved_at
        )
        return IssueRead.model_validate(
            {
                **{field: getattr(issue, field) for field in _PLAIN_FIELDS},
                "reporter": issue.reporter,
                "assignee": issue.assignee,
                "labels": [label.name for label in issue.labels],
                "duplicate_of": issue.duplicate_of_id,
                "sla_due_at": sla.effective_due(state, now),
                "sla_breached": sla.is_breached(state, now),
                "sla_at_risk": sla.is_at_risk(state, now),
                "waiting_on_reporter": issue.waiting_since is not None,
            }
        )

    async def get(self, issue_id: int, reader: User) -> Issue:
        """The issue, if ``reader`` may see it; NotFound otherwise (never reveals existence)."""
        issue = await self.session.scalar(
            _with_people(self.dialect).where(Issue.id == issue_id, *self._visible_to(reader))
        )
        if issue is None:
            raise NotFound(f"No issue with id {issue_id}")
        return issue

    async def detail(self, issue: Issue, reader: User) -> IssueDetail:
        """The issue with its comments (internal ones for staff only), history and duplicates."""
        comments = select(IssueComment).where(IssueComment.issue_id == issue.id)
        if not reader.role.is_staff:
            comments = comments.where(IssueComment.internal.is_(False))
        comment_rows = await self.session.scalars(
            comments.options(selectinload(IssueComment.author)).order_by(IssueComment.id)
        )
        events = await self.session.scalars(
            select(IssueEvent)
            .where(IssueEvent.issue_id == issue.id)
            .options(selectinload(IssueEvent.actor))
            .order_by(IssueEvent.id)
        )
        duplicate_ids = await self.session.scalars(
            select(Issue.id).where(Issue.duplicate_of_id == issue.id).order_by(Issue.id)
        )
        return IssueDetail(
            **self.view(issue).model_dump(),
            comments=[CommentRead.model_validate(c) for c in comment_rows],
            history=[EventRead.model_validate(e) for e in events],
            duplicates=list(duplicate_ids),
        )

    async def search(self, query: IssueQuery, reader: User) -> IssuePage:
        """A filtered, sorted page of the issues ``reader`` may see, and their total."""
        where = self._list_filters(query, reader)
        key, descending = query.sort.lstrip("-"), query.sort.startswith("-")
        column: Any = {
            "created": Issue.created_at,
            "updated": Issue.updated_at,
            "priority": _PRIORITY_RANK,
        }[key]
        offset = query.offset
        if query.q:
            found = await self._text_search(
                query.q,
                where,
                sort_key=column,
                descending=descending,
                in_sort_order=key != "priority",
                offset=offset,
                limit=query.limit,
            )
            total, offset = found.total, found.offset
            where.append(found.matches)
        else:
            total = await text_search.count_issues(self.session, where)
        order = column.desc() if descending else column.asc()
        tie = Issue.id.desc() if descending else Issue.id.asc()
        page = _with_people(self.dialect).where(*where).limit(query.limit).offset(offset)
        issues = await self.session.scalars(page.order_by(order, tie))
        return IssuePage(items=[self.view(issue) for issue in issues], total=total)

    async def _text_search(
        self,
        text: str,
        where: list[ColumnElement[bool]],
        *,
        sort_key: ColumnElement[Any],
        descending: bool,
        in_sort_order: bool,
        offset: int,
        limit: int,
    ) -> text_search.Found:
        """The total of the issues holding ``text`` and how to read their page."""
        return await text_search.search(
            self.session,
            text,
            where,
            sort_key=sort_key,
            descending=descending,
            in_sort_order=in_sort_order,
            offset=offset,
            limit=limit,
        )

    @staticmethod
    def _visible_to(reader: User) -> list[ColumnElement[bool]]:
        """The one rule of who sees which issues: staff all, a user only their own."""
        return [] if reader.role.is_staff else [Issue.reporter_id == reader.id]

    def _list_filters(self, query: IssueQuery, reader: User) -> list[ColumnElement[bool]]:
        where = self._visible_to(reader)
        if query.status:
            where.append(Issue.status.in_(query.status))
        if query.issue_type:
            where.append(Issue.issue_type == query.issue_type)
        if query.priority:
            where.append(Issue.priority == query.priority)
        for column, username in (
            (Issue.assignee_id, query.assignee),
            (Issue.reporter_id, query.reporter),
        ):
            if username:
                where.append(
                    column == select(User.id).where(User.username == username).scalar_subquery()
                )
        for label in query.labels:
            where.append(Issue.id.in_(select(IssueLabel.issue_id).where(IssueLabel.name == label)))
        if query.created_after:
            where.append(Issue.created_at >= query.created_after)
        if query.created_before:
            where.append(Issue.created_at < query.created_before)
        return where

    async def statistics(self, query: StatisticsQuery) -> IssueStatistics:
        """The desk's figures, computed by the database."""
        return await IssueStatisticsQuery(
            self.session, query, targets=self.targets, now=self.clock()
        ).compute()

    # Writing -------------------------------------------------------------------------

    async def create(self, data: IssueCreate, reporter: User) -> IssueCreated:
        """Files a new issue, with its resolution clock started and likely duplicates listed.

        The duplicates are looked for first: reads take no write lock, so the transaction
        that writes (and on SQLite holds the store's one write lock) stays short.
        """
        candidates = await self._likely_duplicates(data.title, data.description, reporter)
        now = self.clock()
        issue = Issue(
            title=data.title,
            description=data.description,
            issue_type=data.issue_type,
            priority=data.priority,
            status=IssueStatus.OPEN,
            reporter_id=reporter.id,
            created_at=now,
            updated_at=now,
            sla_due_at=self.targets.due_at(now, data.priority, 0.0),
            labels=[IssueLabel(name=name) for name in sorted(set(data.labels))],
        )
        self.session.add(issue)
        await self.session.flush()
        self._record(issue, reporter, "status", None, IssueStatus.OPEN.value, note="reported")
        # The view is built from what was just written, not read back: on SQLite every
        # statement until the commit holds the store's one write lock, which sixteen
        # reporters at once take in turns.
        set_committed_value(issue, "reporter", reporter)
        set_committed_value(issue, "assignee", None)
        return IssueCreated(**self.view(issue).model_dump(), likely_duplicates=candidates)

    async def _likely_duplicates(
        self, title: str, description: str, reader: User
    ) -> list[DuplicateCandidate]:
        """Open issues like a new one, among those ``reader`` may see (never anyone else's)."""
        terms = duplicates.search_terms(title)
        if not terms:
            return []
        open_issues = select(Issue.id, Issue.title, Issue.description, Issue.status).where(
            Issue.status.not_in(DONE_STATUSES), *self._visible_to(reader)
        )
        newest = text_search.newest_matching(open_issues, terms, self.dialect, [Issue.title])
        rows = (await self.session.execute(newest.limit(DUPLICATE_CANDIDATES))).all()
        status_of = {row.id: row.status for row in rows}
        title_of = {row.id: row.title for row in rows}
        ranked = duplicates.rank(
            duplicates.profile(title, description),
            ((row.id, row.title, row.description) for row in rows),
        )
        return [
            DuplicateCandidate(id=i, title=title_of[i], status=status_of[i], similarity=score)
            for i, score in ranked
        ]

    async def update(self, issue: Issue, changes: IssueUpdate, actor: User) -> IssueRead:
        """Edits the fields sent; staff edit anything, the reporter only title and description."""
        sent = changes.model_fields_set
        if not actor.role.is_staff and not sent <= _EDITABLE_BY_REPORTER:
            forbidden = ", ".join(sorted(sent - _EDITABLE_BY_REPORTER))
            raise PermissionDenied(f"Only developers may change: {forbidden}")
        now = self.clock()
        for field in ("title", "description", "issue_type", "priority"):
            value = getattr(changes, field)
            if field in sent and value is not None:
                self._set(issue, actor, field, value)
        if "priority" in sent:  # the due time follows the new priority's target
            issue.sla_due_at = self.targets.due_at(
                issue.created_at, issue.priority, issue.paused_seconds
            )
        if "labels" in sent and changes.labels is not None:
            await self._set_labels(issue, actor, changes.labels)
        if "assignee" in sent:
            await self._set_assignee(issue, actor, changes.assignee)
        if "waiting_on_reporter" in sent and changes.waiting_on_reporter is not None:
            if changes.waiting_on_reporter:
                self._start_waiting(issue, actor, now)
            else:
                self._stop_waiting(issue, actor, now)
        issue.updated_at = now
        await self.session.flush()
        return self.view(await self._reloaded(issue))

    def _set(self, issue: Issue, actor: User, field: str, value: Any) -> bool:
        old = getattr(issue, field)
        if old == value:
            return False
        setattr(issue, field, value)
        self._record(issue, actor, field, str(old), str(value))
        return True

    async def _set_labels(self, issue: Issue, actor: User, labels: Sequence[str]) -> None:
        old = [label.name for label in issue.labels]
        new = sorted(set(labels))
        if old == new:
            return
        await self.session.execute(delete(IssueLabel).where(IssueLabel.issue_id == issue.id))
        self.session.add_all(IssueLabel(issue_id=issue.id, name=name) for name in new)
        self._record(issue, actor, "labels", ",".join(old), ",".join(new))

    async def _set_assignee(self, issue: Issue, actor: User, username: str | None) -> None:
        assignee = None
        if username is not None:
            assignee = await self.session.scalar(select(User).where(User.username == username))
            if assignee is None or not assignee.role.is_staff or not assignee.is_active:
                raise InvalidInput(f"assignee: {username!r} is not an active developer or admin")
        if issue.assignee_id == (assignee.id if assignee else None):
            return
        old = issue.assignee.username if issue.assignee else None
        issue.assignee_id = assignee.id if assignee else None
        self._record(issue, actor, "assignee", old, username)

    def _start_waiting(self, issue: Issue, actor: User, now: datetime) -> None:
        if issue.status in DONE_STATUSES:
            raise Conflict("A resolved issue is not waiting on anyone")
        if issue.waiting_since is None:
            issue.waiting_since = now
            self._record(issue, actor, "waiting_on_reporter", "false", "true")

    def _stop_waiting(self, issue: Issue, actor: User, now: datetime) -> None:
        """Ends a pause: its length moves the due time and is left out of every duration."""
        if issue.waiting_since is None:
            return
        paused = max((now - issue.waiting_since).total_seconds(), 0.0)
        issue.paused_seconds += paused
        issue.sla_due_at += timedelta(seconds=paused)
        issue.waiting_since = None
        self._record(
            issue, actor, "waiting_on_reporter", "true", "false", note=f"paused {paused:.0f}s"
        )

    async def change_status(self, issue: Issue, change: StatusChange, actor: User) -> IssueRead:
        """Moves the issue along the workflow, if this caller may make this move now."""
        move = workflow.Move(
            current=issue.status,
            target=change.status,
            role=actor.role,
            is_reporter=issue.reporter_id == actor.id,
            has_assignee=issue.assignee_id is not None,
            resolution=change.resolution,
            duplicate_of=change.duplicate_of,
        )
        resolution = workflow.check(move)
        if change.duplicate_of is not None:
            await self._check_original(issue, change.duplicate_of)
        now = self.clock()
        if change.status in DONE_STATUSES or move.is_reopen:
            self._stop_waiting(issue, actor, now)
        values = self._stage_values(issue, move, resolution, now)
        applied = await self.session.execute(
            update(Issue)
            .where(Issue.id == issue.id, Issue.status == issue.status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if applied.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Issue {issue.id} changed status meanwhile; reload it and try again")
        self._record(
            issue, actor, "status", move.current.value, move.target.value, note=change.comment
        )
        if change.duplicate_of is not None:
            self._record(issue, actor, "duplicate_of", None, str(change.duplicate_of))
            original = await self.session.get_one(Issue, change.duplicate_of)
            self._record(original, actor, "duplicates", None, str(issue.id))
        if change.comment:
            self.session.add(
                IssueComment(
                    issue_id=issue.id, author_id=actor.id, body=change.comment, created_at=now
                )
            )
        await self.session.flush()
        return self.view(await self._reloaded(issue))

    async def _check_original(self, issue: Issue, original_id: int) -> None:
        if original_id == issue.id:
            raise InvalidInput("duplicate_of: an issue cannot duplicate itself")
        if await self.session.get(Issue, original_id) is None:
            raise InvalidInput(f"duplicate_of: no issue with id {original_id}")

    def _stage_values(
        self, issue: Issue, move: workflow.Move, resolution: Any, now: datetime
    ) -> dict[str, Any]:
        """The columns a move sets: the status, the stage's entry time and its duration."""
        values: dict[str, Any] = {"status": move.target, "updated_at": now}
        paused = issue.paused_seconds
        if move.is_reopen:
            values |= {
                "resolution": None,
                "resolved_at": None,
                "verified_at": None,
                "closed_at": None,
                "resolution_seconds": None,
                "resolved_within_target": None,
                "reopen_count": issue.reopen_count + 1,
            }
            if move.current is IssueStatus.RESOLVED:
                values["verification_rejections"] = issue.verification_rejections + 1
            return values
        if resolution is not None:
            values["resolution"] = resolution
        if move.target is IssueStatus.TRIAGED and issue.triaged_at is None:
            values["triaged_at"] = now
            values["triage_seconds"] = sla.working_seconds(issue.created_at, now, paused)
        if move.target is IssueStatus.ASSIGNED:
            values["assigned_at"] = now
        if move.target is IssueStatus.RESOLVED or move.is_early_close:
            # sla_due_at already includes every pause, so compare the wall clock with it.
            values["resolved_at"] = now
            values["resolution_seconds"] = sla.working_seconds(issue.created_at, now, paused)
            values["resolved_within_target"] = now <= issue.sla_due_at
        if move.target is IssueStatus.VERIFIED:
            values["verified_at"] = now
            values["verification_count"] = issue.verification_count + 1
        if move.target is IssueStatus.CLOSED:
            values["closed_at"] = now
        if move.duplicate_of is not None:
            values["duplicate_of_id"] = move.duplicate_of
        return values

    async def comment(self, issue: Issue, data: CommentCreate, author: User) -> CommentRead:
        """Adds a comment; a reporter's reply ends a wait, a developer's is the first response."""
        if data.internal and not author.role.is_staff:
            raise PermissionDenied("Only developers may write internal comments")
        if issue.status is IssueStatus.CLOSED and not author.role.is_staff:
            raise Conflict("This issue is closed; reopen it to add a comment")
        now = self.clock()
        comment = IssueComment(
            issue_id=issue.id,
            author_id=author.id,
            body=data.body,
            internal=data.internal,
            created_at=now,
        )
        self.session.add(comment)
        if author.id == issue.reporter_id:
            self._stop_waiting(issue, author, now)
        elif author.role.is_staff and not data.internal and issue.first_response_at is None:
            issue.first_response_at = now
            issue.first_response_seconds = sla.working_seconds(
                issue.created_at, now, issue.paused_seconds
            )
        issue.updated_at = now
        await self.session.flush()
        await self.session.refresh(comment, attribute_names=["author"])
        return CommentRead.model_validate(comment)

    async def annotate(
        self, issue: Issue, actor: User, field: str, value: str, *, note: str | None = None
    ) -> None:
        """Adds a history entry that is not a field change, such as a link to an alert."""
        self._record(issue, actor, field, None, value, note=note)
        issue.updated_at = self.clock()
        await self.session.flush()

    # Helpers -------------------------------------------------------------------------

    def _record(
        self,
        issue: Issue,
        actor: User | None,
        field: str,
        old: str | None,
        new: str | None,
        *,
        note: str | None = None,
    ) -> None:
        self.session.add(
            IssueEvent(
                issue_id=issue.id,
                actor_id=actor.id if actor else None,
                at=self.clock(),
                field=field,
                old_value=old,
                new_value=new,
                note=note,
            )
        )

    async def _reloaded(self, issue: Issue) -> Issue:
        reloaded = await self.session.scalar(
            _with_people(self.dialect)
            .where(Issue.id == issue.id)
            .execution_options(populate_existing=True)
        )
        assert reloaded is not None
        return reloaded


_PLAIN_FIELDS = (
    "id",
    "title",
    "description",
    "issue_type",
    "priority",
    "status",
    "resolution",
    "created_at",
    "updated_at",
    "triaged_at",
    "assigned_at",
    "first_response_at",
    "resolved_at",
    "verified_at",
    "closed_at",
    "reopen_count",
)
