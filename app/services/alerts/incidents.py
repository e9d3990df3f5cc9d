"""The incident loop: a component that goes down opens one critical ``incident`` issue,
reported by the ``watchkeeper`` robot and linked to the alert; its recovery adds a comment
with the outage's duration and the ``recovered`` label. People take it on from there, and
the workflow's rules bind the robot as they bind everyone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.db.models import Alert, HealthIncident, User
from app.schemas.issues import CommentCreate, IssueCreate, IssueUpdate
from app.services import accounts
from app.services.issues import IssueTracker, ResolutionTargets
from app.vocabulary.accounts import Role
from app.vocabulary.issues import IssueType, Priority

ROBOT = "watchkeeper"
RECOVERED_LABEL = "recovered"


def describe_duration(seconds: float) -> str:
    """``1 h 02 min 05 s`` style, the way people say outage lengths."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


async def robot(session: AsyncSession) -> User:
    """The account incidents are reported by; created on first use, never able to log in."""
    found = await session.scalar(select(User).where(User.username == ROBOT))
    if found is not None:
        return found
    return await accounts.create_user(session, username=ROBOT, role=Role.DEVELOPER)


class IncidentLoop:
    """Opens and annotates incident issues for one unit of work."""

    def __init__(self, session: AsyncSession, *, targets: ResolutionTargets, now: datetime) -> None:
        self.session = session
        self.tracker = IssueTracker(session, targets=targets, clock=lambda: now)
        self.now = now

    async def open(self, alert: Alert) -> int:
        """Files the incident issue for a firing alert and links the two."""
        reporter = await robot(self.session)
        figures = ", ".join(f"{key}: {value}" for key, value in alert.figures.items())
        raised = f"{alert.first_seen:%Y-%m-%d %H:%M:%S}"
        created = await self.tracker.create(
            IssueCreate(
                title=f"Incident: {alert.component} is down"[:200],
                description=(
                    f"{alert.message}.\n\nRaised by Watchkeeper at {raised} UTC by rule "
                    f"`{alert.rule}` (alert {alert.id}).\n\nFigures: {figures}"
                ),
                issue_type=IssueType.INCIDENT,
                priority=Priority.CRITICAL,
                labels=["watchkeeper"],
            ),
            reporter,
        )
        issue = await self.tracker.get(created.id, reporter)
        await self.tracker.annotate(issue, reporter, "alert", str(alert.id), note=alert.key)
        return created.id

    async def recovered(self, alert: Alert) -> None:
        """Comments the outage's duration on the alert's incident issue and labels it."""
        if alert.incident_issue_id is None:
            return
        reporter = await robot(self.session)
        try:
            issue = await self.tracker.get(alert.incident_issue_id, reporter)
        except NotFound:
            return  # deleted meanwhile: nothing to annotate
        started, ended = await self._outage(alert)
        duration = describe_duration((ended - started).total_seconds())
        await self.tracker.comment(
            issue,
            CommentCreate(
                body=(
                    f"Recovered: {alert.component} was down for {duration} "
                    f"(from {started:%Y-%m-%d %H:%M:%S} to {ended:%Y-%m-%d %H:%M:%S} UTC)."
                )
            ),
            reporter,
        )
        labels = sorted({label.name for label in issue.labels} | {RECOVERED_LABEL})
        await self.tracker.update(issue, IssueUpdate(labels=labels), reporter)

    async def _outage(self, alert: Alert) -> tuple[datetime, datetime]:
        """The unhealthy run as the health history measured it, or the alert's own span."""
        incident = await self.session.scalar(
            select(HealthIncident)
            .where(
                HealthIncident.component == alert.component,
                HealthIncident.started_at <= self.now,
                HealthIncident.ended_at.is_not(None),
            )
            .order_by(HealthIncident.started_at.desc())
            .limit(1)
        )
        if incident is not None and incident.ended_at is not None:
            return incident.started_at, incident.ended_at
        return alert.first_seen, self.now
