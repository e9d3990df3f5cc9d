"""Takes watchkeeper-agent batches (``POST /api/v1/ingest/requests``) into the store, once.

An agent posts what it recorded since its last shipment: per-minute buckets with their
serialised sketches (the agent's own :class:`~watchkeeper_agent.sketch.QuantileSketch`,
the format the server stores). A bucket is stored as it came, as one minute row of the
service with the source ``agent``; shares of one minute sent in several batches add up
like the partial minutes our own flusher writes.

Exactly once: the agent retries a batch under the same id until it hears an answer, and
the batch id is inserted in the transaction that inserts its rows. A known id is answered
as stored without storing anything; two retries racing past that check meet the id's
unique constraint, and the loser's transaction stores nothing.

Nothing of a forged batch is stored: every bucket is checked first (its sketch decodes,
adds up to its count, sum and max; its minute lies within the retention and not in the
future), and a batch naming more than :data:`MAX_BATCH_ROUTES` routes is refused whole.
The per-service route cap of the OTLP receiver (its :class:`~.otlp.routes.RouteBudget`,
shared) applies too: routes past it are counted as unmatched.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import math
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from watchkeeper_agent.recorder import Exemplar, MinuteBucket
from watchkeeper_agent.sketch import QuantileSketch, SketchFormatError

from app.core.config import Settings
from app.core.errors import InvalidInput
from app.db.models import IngestBatch
from app.db.store import Store
from app.schemas.ingest import AgentBatch, BatchBucket, BatchReceipt
from app.services.performance import storage
from app.services.performance.otlp.routes import RouteBudget
from app.vocabulary.performance import UNMATCHED_ROUTE, RequestSource

logger = logging.getLogger("watchkeeper.performance")

MAX_BATCH_ROUTES: Final = 10_000
# Clocks of the agent's host and ours may disagree a little; a minute further ahead is forged.
CLOCK_SKEW: Final = timedelta(minutes=5)
# Sums travel as JSON numbers and are compared after decoding: only rounding may differ.
_SUM_TOLERANCE: Final = 1e-9


class AgentIngest:
    """Checks agent batches and stores each batch id with its buckets in one transaction."""

    def __init__(
        self, store: Store, routes: RouteBudget, *, retention: timedelta, exemplars: int
    ) -> None:
        self._store = store
        self._routes = routes
        self._retention = retention
        self._exemplars = exemplars

    @classmethod
    def from_settings(cls, store: Store, routes: RouteBudget, settings: Settings) -> AgentIngest:
        """Limited as the settings say, sharing the OTLP receiver's route budget."""
        return cls(
            store,
            routes,
            retention=timedelta(days=settings.performance_retention_days),
            exemplars=settings.performance_exemplars,
        )

    async def take(self, batch: AgentBatch, *, now: datetime) -> BatchReceipt:
        """Store ``batch`` unless stored before; raises InvalidInput naming what is forged."""
        buckets = [
            self._bucket(f"buckets[{position}]", bucket, batch.service, now)
            for position, bucket in enumerate(batch.buckets)
        ]
        routes = {bucket.route for bucket in buckets}
        if len(routes) > MAX_BATCH_ROUTES:
            raise InvalidInput(
                f"the batch names {len(routes)} routes; at most {MAX_BATCH_ROUTES} are accepted"
            )
        receipt = BatchReceipt(
            batch_id=batch.batch_id,
            stored=True,
            buckets=len(buckets),
            requests=sum(bucket.count for bucket in buckets),
        )
        try:
            async with self._store.unit_of_work() as session:
                if await _known(session, batch.batch_id):
                    return receipt.model_copy(update={"stored": False})
                await self._routes.load(session, self._routes.unknown({batch.service}))
                session.add(IngestBatch(batch_id=batch.batch_id, service=batch.service))
                await storage.write_minutes(
                    session,
                    [self._within_cap(bucket) for bucket in buckets],
                    process=f"agent:{batch.agent.pid}"[:64],
                )
        except IntegrityError:
            # A retry of the same batch, racing this one, stored it first.
            async with self._store.unit_of_work() as session:
                if await _known(session, batch.batch_id):
                    return receipt.model_copy(update={"stored": False})
            raise
        if batch.dropped_requests:
            logger.warning(
                "agent of %r (pid %d) dropped %d requests before this batch",
                batch.service,
                batch.agent.pid,
                batch.dropped_requests,
            )
        return receipt

    def _bucket(self, where: str, sent: BatchBucket, service: str, now: datetime) -> MinuteBucket:
        """The bucket as the store takes it, or InvalidInput naming what does not hold."""
        minute = sent.minute
        if minute.second or minute.microsecond:
            raise InvalidInput(f"{where}: minute {minute.isoformat()} is not a minute's start")
        if minute > now + CLOCK_SKEW:
            raise InvalidInput(f"{where}: minute {minute.isoformat()} is in the future")
        if minute < now - self._retention:
            raise InvalidInput(
                f"{where}: minute {minute.isoformat()} is older than the retention "
                f"({self._retention.days} days)"
            )
        sketch = _sketch(where, sent)
        exemplars = sorted(
            (Exemplar(e.duration_ms, e.request_id, e.at) for e in sent.exemplars),
            key=lambda exemplar: exemplar.duration_ms,
            reverse=True,
        )
        if exemplars and exemplars[0].duration_ms > sent.max_ms:
            raise InvalidInput(f"{where}: an exemplar is slower than max_ms")
        return MinuteBucket(
            minute=minute,
            service=service,
            source=RequestSource.AGENT,
            route=sent.route,
            method=sent.method,
            status_class=sent.status_class,
            sketch=sketch,
            exemplars=tuple(exemplars[: self._exemplars]),
        )

    def _within_cap(self, bucket: MinuteBucket) -> MinuteBucket:
        """The bucket, counted as unmatched when its route is past the service's cap."""
        route = bucket.route
        if route == UNMATCHED_ROUTE or self._routes.admit(bucket.service, route):
            return bucket
        return dataclasses.replace(bucket, route=UNMATCHED_ROUTE)


def _sketch(where: str, sent: BatchBucket) -> QuantileSketch:
    """The bucket's decoded sketch, when it adds up to the bucket's figures."""
    try:
        sketch = QuantileSketch.from_bytes(base64.b64decode(sent.sketch, validate=True))
    except binascii.Error:
        raise InvalidInput(f"{where}: sketch is not base64") from None
    except SketchFormatError as error:
        raise InvalidInput(f"{where}: sketch is not a serialised sketch: {error}") from None
    if sketch.count != sent.count:
        raise InvalidInput(
            f"{where}: the sketch's buckets add up to {sketch.count} requests, not count "
            f"{sent.count}"
        )
    low, high = sketch.min, sketch.max
    assert low is not None and high is not None, "a sketch counting requests has extremes"
    if not (math.isfinite(sketch.sum) and 0.0 <= low <= high):
        raise InvalidInput(f"{where}: the sketch's sum, min or max is not a duration")
    if not math.isclose(sketch.sum, sent.sum_ms, rel_tol=_SUM_TOLERANCE, abs_tol=1e-6):
        raise InvalidInput(f"{where}: the sketch sums to {sketch.sum} ms, not sum_ms {sent.sum_ms}")
    if high != sent.max_ms:
        raise InvalidInput(f"{where}: the sketch's max is {high} ms, not max_ms {sent.max_ms}")
    return sketch


async def _known(session: AsyncSession, batch_id: str) -> bool:
    """Whether the batch was stored before."""
    found = await session.scalar(select(IngestBatch.id).where(IngestBatch.batch_id == batch_id))
    return found is not None
