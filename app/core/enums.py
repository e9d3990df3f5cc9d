"""Enumerations shared by the tables, the schemas and the services."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    USER = "user"

    @property
    def is_staff(self) -> bool:
        """Admins and developers run the desk and the monitoring."""
        return self in (Role.ADMIN, Role.DEVELOPER)


class TokenKind(StrEnum):
    SESSION = "session"  # issued by POST /auth/token, short-lived
    API = "api"  # created by an admin or the CLI for scripts and probes


class Ranked(StrEnum):
    """A StrEnum whose members are declared from the least to the most urgent."""

    @property
    def rank(self) -> int:
        """Higher is more urgent; used to sort."""
        return list(type(self)).index(self)


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
