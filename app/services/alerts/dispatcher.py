"""Sends queued notifications: due deliveries are claimed, sent concurrently, and retried
with exponential backoff; failures are recorded and visible, never raised at the monitor.

Several processes may dispatch from one store: a delivery is claimed by a conditional
update, so each attempt is made by exactly one of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from app.db.base import utcnow
from app.db.models import AlertDelivery
from app.db.store import Store, is_outage
from app.services.alerts.channels import Channels, DeliveryError
from app.vocabulary.alerts import DeliveryState

logger = logging.getLogger("watchkeeper.alerts")

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=5)
CLAIM_FOR = timedelta(minutes=1)
BATCH = 50


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s … capped at five minutes."""
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


class Dispatcher:
    """Delivers what the alert engine queued."""

    def __init__(
        self, store: Store, channels: Channels, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock

    async def deliver_due(self) -> int:
        """One round: claims and sends every due delivery; returns how many were attempted."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
        """Delivers until ``stop`` is set through store outages and failing channels; a bug
        raises, for the supervisor to log and restart."""
        while not stop.is_set():
            try:
                await self.deliver_due()
            except Exception as error:
                if not is_outage(error):
                    raise
                # The store is away: the deliveries wait in it for a later round.
                logger.warning("notification round skipped: %s", type(error).__name__)
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
            except TimeoutError:
                continue

    async def _claim(self) -> list[AlertDelivery]:
        now = self.clock()
        async with self.store.unit_of_work() as session:
            due = await session.scalars(
                select(AlertDelivery)
                .where(
                    AlertDelivery.state == DeliveryState.PENDING,
                    AlertDelivery.next_attempt_at <= now,
                    or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < now),
                )
                .order_by(AlertDelivery.id)
                .limit(BATCH)
            )
            mine = []
            for delivery in due:
                taken = await session.execute(
                    update(AlertDelivery)
                    .where(
                        AlertDelivery.id == delivery.id,
                        or_(
                            AlertDelivery.claimed_until.is_(None),
                            AlertDelivery.claimed_until < now,
                        ),
                    )
                    .values(claimed_until=now + CLAIM_FOR)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    mine.append(delivery)
        return mine

    async def _attempt(self, delivery: AlertDelivery) -> None:
        error: str | None = None
        try:
            await self.channels.send(delivery.channel, delivery.payload)
        except DeliveryError as failure:
            error = str(failure)
        except Exception as failure:  # a bug in a channel library must not stop the others
            error = f"{type(failure).__name__} while sending"
        now = self.clock()
        attempts = delivery.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "claimed_until": None}
        if error is None:
            values |= {"state": DeliveryState.DELIVERED, "delivered_at": now, "last_error": None}
        elif attempts >= MAX_ATTEMPTS:
            values |= {"state": DeliveryState.FAILED, "last_error": error, "next_attempt_at": None}
        else:
            values |= {"last_error": error, "next_attempt_at": now + backoff(attempts)}
        if error:
            logger.warning(
                "delivery %s to %s failed (attempt %d): %s",
                delivery.id,
                delivery.channel,
                attempts,
                error,
            )
        async with self.store.unit_of_work() as session:
            await session.execute(
                update(AlertDelivery).where(AlertDelivery.id == delivery.id).values(**values)
            )
