"""The public status page: where the public components stand, their uptime bars, the
incidents about them and the maintenance planned for them — for anyone, signed in or not.

Only targets marked ``public`` appear, each by its public name (``display_name``, else its
name), and only the public name: every figure is read for the public components by their
names, then handed on under the public name alone. An incident is an incident issue the
alert engine opened for a public component; its public updates are the comments people
wrote on it that are not internal. The robot's own notes carry the internal name and
figures, so the page says the recovery in its own words instead. A maintenance window is
shown by when it runs and what it covers, never by its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.db.models import Alert, ComponentState
from app.schemas.status_page import (
    PublicBadge,
    PublicComponent,
    PublicDay,
    PublicIncident,
    PublicMaintenance,
    PublicStatus,
    PublicUpdate,
)
from app.schemas.targets import Target
from app.services.alerts.incidents import ROBOT, describe_duration, robot
from app.services.health import Window, daily_uptime, known_windows, period_uptime
from app.services.issues import IssueTracker, ResolutionTargets
from app.vocabulary.health import ComponentStatus, worst_status

UPTIME_DAYS: Final = 90
BADGE_UPTIME_DAYS: Final = 30
RECENT_INCIDENTS: Final = timedelta(days=14)
INCIDENTS_SHOWN: Final = 20
# A weekly window's start days: one may have begun up to a week ago and still run.
_WEEK: Final = range(-7, 8)


@dataclass(frozen=True)
class PublicNames:
    """The public targets: each one's public name by its name, in configuration order."""

    by_name: dict[str, str]

    @classmethod
    def of(cls, targets: Sequence[Target]) -> PublicNames:
        return cls({t.name: t.display_name or t.name for t in targets if t.public})

    def name_shown_as(self, public_name: str) -> str | None:
        """The target shown under ``public_name`` (the first, should two share it)."""
        return next((n for n, shown in self.by_name.items() if shown == public_name), None)


def _span(window: Window, now: datetime) -> tuple[datetime, datetime] | None:
    """The run of ``window`` going on at ``now`` or next after it; None once it is over."""
    if window.ended_at is not None and window.ended_at <= now:
        return None
    if window.recurrence is None:
        assert window.starts_at is not None and window.ends_at is not None
        return (window.starts_at, window.ends_at) if window.ends_at > now else None
    length = timedelta(minutes=window.recurrence.duration_minutes)
    for offset in _WEEK:
        day = (now + timedelta(days=offset)).astimezone(UTC).date()
        if day.weekday() in window.recurrence.weekdays:
            start = datetime.combine(day, window.recurrence.start, tzinfo=UTC)
            if start + length > now:
                return start, start + length
    return None


class StatusPage:
    """The public status page's answers, for one unit of work, as of ``now``."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        targets: Sequence[Target],
        configured_windows: Sequence[Window],
        resolution_targets: ResolutionTargets,
        now: datetime,
    ) -> None:
        self.session = session
        self.names = PublicNames.of(targets)
        self.configured_windows = configured_windows
        self.tracker = IssueTracker(session, targets=resolution_targets, clock=lambda: now)
        self.now = now

    async def status(self) -> PublicStatus:
        """Everything the page shows."""
        names = list(self.names.by_name)
        states = await self._states()
        maintenance = await self._maintenance()
        under = {c for m in maintenance if m.in_progress for c in m.components}
        bars = await daily_uptime(self.session, days=UPTIME_DAYS, now=self.now, components=names)
        whole = await period_uptime(self.session, days=UPTIME_DAYS, now=self.now, components=names)
        components = []
        for name, shown in self.names.by_name.items():
            state = states.get(name)
            components.append(
                PublicComponent(
                    name=shown,
                    status=state.status if state else ComponentStatus.UNKNOWN,
                    since=state.since if state else None,
                    under_maintenance=shown in under,
                    uptime_percent=whole[name],
                    days=[PublicDay(day=bar.day, uptime_percent=bar.uptime) for bar in bars[name]],
                )
            )
        incidents = await self._incidents()
        return PublicStatus(
            status=worst_status(c.status for c in components),
            checked_at=self.now,
            uptime_days=UPTIME_DAYS,
            components=components,
            active_incidents=[i for i in incidents if i.resolved_at is None],
            recent_incidents=[i for i in incidents if i.resolved_at is not None],
            maintenance=maintenance,
        )

    async def badge(self, public_name: str) -> PublicBadge:
        """One public component's status and uptime; NotFound for any other name."""
        name = self.names.name_shown_as(public_name)
        if name is None:
            raise NotFound("No public component has that name")
        state = (await self._states()).get(name)
        uptime = await period_uptime(
            self.session, days=BADGE_UPTIME_DAYS, now=self.now, components=[name]
        )
        return PublicBadge(
            name=public_name,
            status=state.status if state else ComponentStatus.UNKNOWN,
            uptime_days=BADGE_UPTIME_DAYS,
            uptime_percent=uptime[name],
        )

    async def _states(self) -> dict[str, ComponentState]:
        rows = await self.session.scalars(
            select(ComponentState).where(ComponentState.component.in_(list(self.names.by_name)))
        )
        return {row.component: row for row in rows}

    async def _incidents(self) -> list[PublicIncident]:
        """Incidents going on or resolved lately, newest first."""
        alerts = list(
            await self.session.scalars(
                select(Alert)
                .where(
                    Alert.incident_issue_id.is_not(None),
                    Alert.component.in_(list(self.names.by_name)),
                    Alert.first_seen <= self.now,
                    or_(
                        Alert.resolved_at.is_(None),
                        Alert.resolved_at >= self.now - RECENT_INCIDENTS,
                    ),
                )
                .order_by(Alert.first_seen.desc(), Alert.id.desc())
                .limit(INCIDENTS_SHOWN)
            )
        )
        if not alerts:
            return []
        reader = await robot(self.session)  # who filed them, so may read them
        found = []
        for alert in alerts:
            assert alert.incident_issue_id is not None
            try:
                issue = await self.tracker.get(alert.incident_issue_id, reader)
            except NotFound:
                continue  # the issue went meanwhile: nothing left to tell
            detail = await self.tracker.detail(issue, reader)
            shown = self.names.by_name[alert.component]
            updates = [
                PublicUpdate(key=f"comment-{c.id}", at=c.created_at, body=c.body)
                for c in detail.comments
                if not c.internal and c.author.username != ROBOT
            ]
            if alert.resolved_at is not None:
                lasted = describe_duration((alert.resolved_at - alert.first_seen).total_seconds())
                body = f"Resolved: {shown} is available again, after {lasted}."
                updates.append(PublicUpdate(key="resolved", at=alert.resolved_at, body=body))
            updates.sort(key=lambda update: update.at, reverse=True)
            found.append(
                PublicIncident(
                    id=alert.id,
                    title=f"{shown} unavailable",
                    component=shown,
                    started_at=alert.first_seen,
                    resolved_at=alert.resolved_at,
                    updates=updates,
                )
            )
        return found

    async def _maintenance(self) -> list[PublicMaintenance]:
        """Windows running or ahead that cover a public component, soonest first."""
        found = []
        for window in await known_windows(self.session, self.configured_windows):
            span = _span(window, self.now)
            covered = [
                shown
                for name, shown in self.names.by_name.items()
                if not window.components or name in window.components
            ]
            if span is None or not covered:
                continue
            found.append(
                PublicMaintenance(
                    starts_at=span[0],
                    ends_at=span[1],
                    in_progress=window.is_open(self.now),
                    components=covered,
                )
            )
        return sorted(found, key=lambda m: (m.starts_at, m.ends_at))
