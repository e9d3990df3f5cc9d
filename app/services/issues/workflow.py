"""The support workflow as data: which status may follow which, and who may make each move.

open → triaged → assigned → in_progress → testing → resolved → verified → closed, plus:
testing → in_progress (the test failed); open/triaged → closed as wont_fix, duplicate or
cannot_reproduce; and a reopen (back to open) from resolved, verified or closed.
Pure functions, so the rules are tested without HTTP or a store.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import Conflict, InvalidInput, PermissionDenied
from app.vocabulary.accounts import Role
from app.vocabulary.issues import IssueStatus, Resolution

S = IssueStatus

NEXT_STATUSES: dict[IssueStatus, tuple[IssueStatus, ...]] = {
    S.OPEN: (S.TRIAGED, S.CLOSED),
    S.TRIAGED: (S.ASSIGNED, S.CLOSED),
    S.ASSIGNED: (S.IN_PROGRESS,),
    S.IN_PROGRESS: (S.TESTING,),
    S.TESTING: (S.RESOLVED, S.IN_PROGRESS),
    S.RESOLVED: (S.VERIFIED, S.OPEN),
    S.VERIFIED: (S.CLOSED, S.OPEN),
    S.CLOSED: (S.OPEN,),
}

REOPENABLE = frozenset({S.RESOLVED, S.VERIFIED, S.CLOSED})
# Closing straight from intake needs one of these reasons; the normal path ends "fixed".
EARLY_CLOSE_RESOLUTIONS = frozenset(
    {Resolution.WONT_FIX, Resolution.DUPLICATE, Resolution.CANNOT_REPRODUCE}
)


@dataclass(frozen=True)
class Move:
    """A requested status change and the facts that decide whether it is allowed."""

    current: IssueStatus
    target: IssueStatus
    role: Role
    is_reporter: bool
    has_assignee: bool
    resolution: Resolution | None = None
    duplicate_of: int | None = None

    @property
    def is_reopen(self) -> bool:
        return self.target is S.OPEN and self.current in REOPENABLE

    @property
    def is_early_close(self) -> bool:
        return self.target is S.CLOSED and self.current in (S.OPEN, S.TRIAGED)


def allowed_moves(
    current: IssueStatus, *, role: Role, is_reporter: bool
) -> tuple[IssueStatus, ...]:
    """The statuses a caller of ``role`` may move an issue to from ``current``."""
    following = NEXT_STATUSES[current]
    if role.is_staff:
        return following
    if not is_reporter:
        return ()
    # The reporter confirms or rejects the fix of their own issue; nothing else.
    return tuple(s for s in following if s is S.VERIFIED or (s is S.OPEN and current in REOPENABLE))


def _allowed_for(move: Move) -> tuple[IssueStatus, ...]:
    return allowed_moves(move.current, role=move.role, is_reporter=move.is_reporter)


def check(move: Move) -> Resolution | None:
    """Raises unless ``move`` is allowed; returns a resolution to set (None keeps the current)."""
    allowed = _allowed_for(move)
    if move.target not in allowed:
        # A move the workflow has, refused to this caller's role, is theirs to ask staff for.
        if move.target in NEXT_STATUSES[move.current] or not allowed:
            raise PermissionDenied("Only developers may change this issue's status now")
        names = ", ".join(s.value for s in allowed) or "none"
        raise Conflict(
            f"Cannot move from {move.current.value} to {move.target.value}; "
            f"allowed next statuses: {names}"
        )
    if move.target is S.ASSIGNED and not move.has_assignee:
        raise Conflict("Set an assignee (PATCH the issue) before moving it to assigned")
    return _resolution_for(move)


def _resolution_for(move: Move) -> Resolution | None:
    if move.duplicate_of is not None and move.resolution is not Resolution.DUPLICATE:
        raise InvalidInput("duplicate_of is only meaningful with resolution duplicate")
    if move.is_early_close:
        if move.resolution not in EARLY_CLOSE_RESOLUTIONS:
            raise InvalidInput(
                "Closing before the fix needs a resolution: wont_fix, duplicate or cannot_reproduce"
            )
        if move.resolution is Resolution.DUPLICATE and move.duplicate_of is None:
            raise InvalidInput("Closing as duplicate needs duplicate_of, the original issue's id")
        return move.resolution
    if move.resolution is not None and move.target is not S.RESOLVED:
        raise InvalidInput(f"A resolution cannot be given when moving to {move.target.value}")
    if move.target is S.RESOLVED:
        if move.resolution not in (None, Resolution.FIXED):
            raise InvalidInput("An issue that went through testing is resolved as fixed")
        return Resolution.FIXED
    return None
