"""The contract of the issue desk: issues, comments, history, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.schemas.base import Instant, Offset, RequestSchema, ResponseSchema, RowId
from app.schemas.users import UserRef
from app.vocabulary.issues import IssueStatus, IssueType, Priority, Resolution

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=20_000)]
Label = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=1, max_length=50, pattern=r"^[^\s,]+$"
    ),
]
Labels = Annotated[list[Label], Field(max_length=20)]
CommentBody = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
]
SortKey = Literal["created", "-created", "updated", "-updated", "priority", "-priority"]


class IssueCreate(RequestSchema):
    title: Title
    description: Description = ""
    issue_type: IssueType
    priority: Priority = Priority.MEDIUM
    labels: Labels = Field(default_factory=list)


class IssueUpdate(RequestSchema):
    """Only the fields sent are changed; ``assignee: null`` unassigns."""

    title: Title | None = None
    description: Description | None = None
    issue_type: IssueType | None = None
    priority: Priority | None = None
    labels: Labels | None = None
    assignee: str | None = Field(default=None, description="A developer's or admin's username.")
    waiting_on_reporter: bool | None = Field(
        default=None, description="Pauses the resolution clock until the reporter replies."
    )


class StatusChange(RequestSchema):
    status: IssueStatus
    comment: CommentBody | None = None
    resolution: Resolution | None = None
    duplicate_of: RowId | None = None


class CommentCreate(RequestSchema):
    body: CommentBody
    internal: bool = False


class CommentRead(ResponseSchema):
    id: int
    body: str
    author: UserRef
    internal: bool
    created_at: datetime


class EventRead(ResponseSchema):
    id: int
    at: datetime
    actor: UserRef | None
    field: str
    old_value: str | None
    new_value: str | None
    note: str | None


class IssueRead(ResponseSchema):
    id: int
    title: str
    description: str
    issue_type: IssueType
    priority: Priority
    status: IssueStatus
    resolution: Resolution | None
    reporter: UserRef
    assignee: UserRef | None
    labels: list[str]
    duplicate_of: int | None
    created_at: datetime
    updated_at: datetime
    triaged_at: datetime | None
    assigned_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    sla_due_at: datetime
    sla_breached: bool
    sla_at_risk: bool
    waiting_on_reporter: bool
    reopen_count: int


class DuplicateCandidate(ResponseSchema):
    id: int
    title: str
    status: IssueStatus
    similarity: float = Field(description="0..1, cosine similarity of title and description.")


class IssueCreated(IssueRead):
    likely_duplicates: list[DuplicateCandidate]


class IssueDetail(IssueRead):
    comments: list[CommentRead]
    history: list[EventRead]
    duplicates: list[int] = Field(description="Issues closed as duplicates of this one.")


class IssuePage(ResponseSchema):
    items: list[IssueRead]
    total: int


class DurationStats(ResponseSchema):
    """Hours, pauses excluded; null when nothing was measured."""

    count: int
    avg: float | None
    median: float | None
    p90: float | None


class WeekCount(ResponseSchema):
    week_start: datetime
    created: int
    resolved: int


class AssigneeLoad(ResponseSchema):
    assignee: UserRef | None
    open: int


class ResolutionTargetStats(ResponseSchema):
    target_hours: dict[Priority, float]
    resolved: int
    within_target: int
    share: float | None


class IssueStatistics(ResponseSchema):
    total: int
    by_status: dict[IssueStatus, int]
    by_type: dict[IssueType, int]
    by_priority: dict[Priority, int]
    open: int = Field(description="open, triaged or assigned")
    in_progress: int = Field(description="in_progress or testing")
    resolved: int = Field(description="resolved, verified or closed")
    time_to_triage_hours: DurationStats
    time_to_first_response_hours: DurationStats
    time_to_resolution_hours: DurationStats
    resolution_target: ResolutionTargetStats
    past_target: int
    at_risk: int
    reopens: int
    reopen_rate: float | None
    verification_rejection_rate: float | None
    close_reasons: dict[Resolution, int]
    backlog_by_age: dict[str, int]
    weekly: list[WeekCount]
    open_per_assignee: list[AssigneeLoad]


class IssueQuery(RequestSchema):
    """Filters, order and page of ``GET /issues``; repeat ``status``/``labels`` for several."""

    status: list[IssueStatus] = Field(default_factory=list)
    issue_type: IssueType | None = None
    priority: Priority | None = None
    assignee: str | None = Field(default=None, max_length=64)
    reporter: str | None = Field(default=None, max_length=64)
    labels: list[Label] = Field(
        default_factory=list, description="Issues carrying every one of these."
    )
    q: str | None = Field(default=None, min_length=1, max_length=200)
    created_after: Instant | None = None
    created_before: Instant | None = None
    sort: SortKey = "-created"
    limit: int = Field(default=20, ge=1, le=100)
    offset: Offset = 0


class StatisticsQuery(RequestSchema):
    issue_type: IssueType | None = None
    priority: Priority | None = None
    created_after: Instant | None = None
    created_before: Instant | None = None
