"""The issue desk's words: types, priorities, the workflow's statuses, resolutions."""

from __future__ import annotations

from enum import StrEnum

from app.vocabulary.ranked import Ranked


class IssueType(StrEnum):
    BUG = "bug"
    FEATURE_REQUEST = "feature_request"
    SUPPORT = "support"
    INCIDENT = "incident"


class Priority(Ranked):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IssueStatus(StrEnum):
    """The support workflow, in order."""

    OPEN = "open"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    TESTING = "testing"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    CLOSED = "closed"


class Resolution(StrEnum):
    FIXED = "fixed"
    WONT_FIX = "wont_fix"
    DUPLICATE = "duplicate"
    CANNOT_REPRODUCE = "cannot_reproduce"


# The three buckets a dashboard shows: waiting for work, being worked on, done.
OPEN_STATUSES = frozenset({IssueStatus.OPEN, IssueStatus.TRIAGED, IssueStatus.ASSIGNED})
WORKING_STATUSES = frozenset({IssueStatus.IN_PROGRESS, IssueStatus.TESTING})
DONE_STATUSES = frozenset({IssueStatus.RESOLVED, IssueStatus.VERIFIED, IssueStatus.CLOSED})
UNRESOLVED_STATUSES = OPEN_STATUSES | WORKING_STATUSES
