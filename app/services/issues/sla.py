"""The resolution clock: targets per priority, due times, pauses, breach and risk.

The clock stops while an issue waits on its reporter; the due time moves by the length of
every pause. Pure functions of an issue's stored fields and "now".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.vocabulary.issues import DONE_STATUSES, IssueStatus, Priority

AT_RISK_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class ResolutionTargets:
    """How long each priority may take to resolve (the spec's 48 h by default)."""

    hours: dict[Priority, float]

    def target(self, priority: Priority) -> timedelta:
        return timedelta(hours=self.hours[priority])

    def due_at(self, created_at: datetime, priority: Priority, paused_seconds: float) -> datetime:
        """When an issue created at ``created_at`` must be resolved, pauses added."""
        return created_at + self.target(priority) + timedelta(seconds=paused_seconds)


@dataclass(frozen=True)
class ClockState:
    """The fields of an issue the clock depends on."""

    status: IssueStatus
    sla_due_at: datetime
    waiting_since: datetime | None
    resolved_at: datetime | None


def effective_due(state: ClockState, now: datetime) -> datetime:
    """The due time counting the pause in progress, if the issue is waiting."""
    if state.waiting_since is None:
        return state.sla_due_at
    return state.sla_due_at + max(now - state.waiting_since, timedelta(0))


def is_breached(state: ClockState, now: datetime) -> bool:
    """Resolved after its due time, or still unresolved past it."""
    if state.status in DONE_STATUSES and state.resolved_at is not None:
        return state.resolved_at > state.sla_due_at
    return now > effective_due(state, now)


def is_at_risk(state: ClockState, now: datetime) -> bool:
    """Unresolved, not yet breached, and due within the next hour."""
    if state.status in DONE_STATUSES or state.waiting_since is not None:
        return False
    due = effective_due(state, now)
    return now <= due <= now + AT_RISK_WINDOW


def working_seconds(start: datetime, end: datetime, paused_seconds: float) -> float:
    """Time from ``start`` to ``end`` with the pauses taken out."""
    return max((end - start).total_seconds() - paused_seconds, 0.0)
