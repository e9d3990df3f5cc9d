"""The contract of the public status page: what anyone may see, signed in or not.

Everything here is meant for the public: a component appears by its public name only
(``display_name``, else its name), an incident by a title made from that name, with the
comments staff wrote for the public as its updates. No check message, internal comment,
latency, error detail, window name or private component ever reaches these models, so a
template cannot show one by mistake.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from app.schemas.base import ResponseSchema
from app.vocabulary.health import ComponentStatus


class PublicDay(ResponseSchema):
    """One bar: a UTC day's uptime, None when nothing was measured."""

    day: date
    uptime_percent: float | None


class PublicComponent(ResponseSchema):
    name: str = Field(description="The public name: display_name, else the target's name.")
    status: ComponentStatus = Field(description="Unknown until its first check is stored.")
    since: datetime | None = Field(description="When it entered this status.")
    under_maintenance: bool
    uptime_percent: float | None = Field(description="Over the days of the bars.")
    days: list[PublicDay] = Field(description="Daily uptime, oldest first, today last.")


class PublicUpdate(ResponseSchema):
    """A note for the public on an incident: a public comment, or the recovery."""

    key: str = Field(description="Stable within its incident (the feed's entry id).")
    at: datetime
    body: str


class PublicIncident(ResponseSchema):
    id: int
    title: str
    component: str = Field(description="The public name of the component it is about.")
    started_at: datetime
    resolved_at: datetime | None = Field(description="None while it goes on.")
    updates: list[PublicUpdate] = Field(description="Newest first.")

    @property
    def updated_at(self) -> datetime:
        """Its newest moment: the latest update, else its start."""
        return max([self.started_at, *(update.at for update in self.updates)])


class PublicMaintenance(ResponseSchema):
    """A planned window (its own name stays internal) over some public components."""

    starts_at: datetime
    ends_at: datetime
    in_progress: bool
    components: list[str] = Field(description="Public names of the components it covers.")


class PublicStatus(ResponseSchema):
    status: ComponentStatus = Field(description="The worst status of the public components.")
    checked_at: datetime = Field(description="When this answer was made.")
    uptime_days: int
    components: list[PublicComponent]
    active_incidents: list[PublicIncident]
    recent_incidents: list[PublicIncident] = Field(description="Resolved lately, newest first.")
    maintenance: list[PublicMaintenance] = Field(description="In progress or ahead, soonest first.")


class PublicBadge(ResponseSchema):
    name: str
    status: ComponentStatus
    uptime_days: int
    uptime_percent: float | None
