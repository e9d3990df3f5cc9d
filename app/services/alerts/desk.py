"""What people do with alerts: list and read them, acknowledge, test a channel, and open or
end maintenance windows (a deploy pipeline opens one before it restarts things)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidInput, NotFound
from app.db.models import Alert, AlertDelivery, MaintenanceWindow, User
from app.schemas.alerts import (
    AlertDetail,
    AlertPage,
    AlertQuery,
    AlertRead,
    ChannelRead,
    DeliveryRead,
    MaintenanceWindowCreate,
    MaintenanceWindowRead,
)
from app.services.alerts.channels import Channels, DeliveryError
from app.services.health import Window, stored_window
from app.vocabulary.alerts import DeliveryState


def window_view(window: Window, now: datetime) -> MaintenanceWindowRead:
    return MaintenanceWindowRead(
        id=window.id,
        name=window.name,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        recurrence=window.recurrence,
        components=list(window.components),
        rules=list(window.rules),
        ended_at=window.ended_at,
        active=window.is_open(now),
    )


class AlertDesk:
    """Alert and maintenance-window operations for one unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        channels: Channels,
        configured_windows: Sequence[Window],
        components: frozenset[str],
        clock: Callable[[], datetime],
    ) -> None:
        self.session = session
        self.channels = channels
        self.configured_windows = configured_windows
        self.components = components
        self.clock = clock

    async def search(self, query: AlertQuery) -> AlertPage:
        """Alerts, newest first, filtered by state, rule and component."""
        where = []
        if query.state:
            where.append(Alert.state == query.state)
        if query.rule:
            where.append(Alert.rule == query.rule)
        if query.component:
            where.append(Alert.component == query.component)
        total = await self.session.scalar(select(func.count()).select_from(Alert).where(*where))
        rows = await self.session.scalars(
            select(Alert)
            .where(*where)
            .order_by(Alert.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
        return AlertPage(items=[AlertRead.model_validate(a) for a in rows], total=total or 0)

    async def get(self, alert_id: int) -> Alert:
        alert = await self.session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"No alert with id {alert_id}")
        return alert

    async def detail(self, alert: Alert) -> AlertDetail:
        """The alert with every notification it caused and how each went."""
        deliveries = await self.session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id == alert.id)
            .order_by(AlertDelivery.id)
        )
        return AlertDetail(
            **AlertRead.model_validate(alert).model_dump(),
            deliveries=[DeliveryRead.model_validate(d) for d in deliveries],
        )

    async def acknowledge(self, alert: Alert, actor: User) -> AlertRead:
        """Marks a firing alert as seen: its repeats stop until it resolves."""
        if alert.acknowledged_at is None:
            alert.acknowledged_at = self.clock()
            alert.acknowledged_by = actor.username
            await self.session.flush()
        return AlertRead.model_validate(alert)

    def channel_list(self) -> list[ChannelRead]:
        return [
            ChannelRead(name=name, kind=channel.kind)
            for name, channel in self.channels.by_name.items()
        ]

    async def test(self, channel: str) -> DeliveryRead:
        """Sends a test notification now and records how it went."""
        if channel not in self.channels.by_name:
            raise NotFound(f"No channel named {channel}; see GET /alerts/channels")
        now = self.clock()
        payload = {
            "event": "test",
            "sent_at": now.isoformat(),
            "component": "watchkeeper",
            "alert": {"message": "Test notification from Watchkeeper", "figures": {}},
        }
        delivery = AlertDelivery(
            channel=channel,
            event="test",
            payload=payload,
            state=DeliveryState.PENDING,
            attempts=1,
            created_at=now,
        )
        try:
            await self.channels.send(channel, payload)
        except DeliveryError as error:
            delivery.state, delivery.last_error = DeliveryState.FAILED, str(error)
        else:
            delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, self.clock()
        self.session.add(delivery)
        await self.session.flush()
        return DeliveryRead.model_validate(delivery)

    async def windows(self) -> list[MaintenanceWindowRead]:
        """Configured and stored windows, the stored ones newest first."""
        now = self.clock()
        rows = await self.session.scalars(
            select(MaintenanceWindow).order_by(MaintenanceWindow.id.desc())
        )
        every = [*self.configured_windows, *(stored_window(row) for row in rows)]
        return [window_view(window, now) for window in every]

    async def open_window(
        self, data: MaintenanceWindowCreate, actor: User
    ) -> MaintenanceWindowRead:
        """Stores a window; alerts under it are recorded but not sent."""
        now = self.clock()
        if data.ends_at is not None and data.ends_at <= now:
            raise InvalidInput("ends_at: the window would be over already; give a future end")
        unknown = sorted(set(data.components) - self.components)
        if unknown:
            known = ", ".join(sorted(self.components))
            raise InvalidInput(f"components: not monitored: {', '.join(unknown)} (known: {known})")
        row = MaintenanceWindow(
            name=data.name,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            recurrence=data.recurrence.model_dump(mode="json") if data.recurrence else None,
            components=data.components,
            rules=list(data.rules),
            created_by=actor.id,
            created_at=self.clock(),
        )
        self.session.add(row)
        await self.session.flush()
        return window_view(stored_window(row), self.clock())

    async def end_window(self, window_id: int) -> MaintenanceWindowRead:
        """Ends a stored window now."""
        row = await self.session.get(MaintenanceWindow, window_id)
        if row is None:
            raise NotFound(f"No maintenance window with id {window_id}")
        now = self.clock()
        if row.ended_at is not None or (row.ends_at is not None and row.ends_at <= now):
            raise Conflict(f"Maintenance window {window_id} has already ended")
        row.ended_at = now
        await self.session.flush()
        return window_view(stored_window(row), self.clock())
