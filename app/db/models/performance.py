"""Request metrics: per-minute rows written by each process, and their hourly and daily
rollups.

Every flush inserts rows, never updates them: a key drained twice (a restore after a store
outage, a late request) becomes two rows whose sketches add up, and several processes on
one store never contend for a row. A minute row is rolled up once its hour is complete:
the hour row is inserted and the minute marked ``rolled_up`` in one transaction, so every
request is counted either in an hour row or in a minute row not yet rolled up, never both.
Minute rows then stay a while for their detail and are deleted. Hour rows of a complete day
are rolled up into day rows the same way (so a month is read as 30 rows per endpoint, not
720); both are kept for the quarter-over-quarter trends, hours for windows that start or
end within a day.

Every row belongs to one ``service`` (Watchkeeper itself, or a service whose figures it
receives) and names its ``source``, how the figures arrived.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, enum_column
from app.vocabulary.performance import RequestSource, StatusClass


class RequestTally:
    """The columns every stored tally of requests has: whose, what was asked, how it went."""

    service: Mapped[str] = mapped_column(String(128))
    source: Mapped[RequestSource] = mapped_column(
        enum_column(RequestSource, checked=False, length=16)
    )
    route: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(8))
    status_class: Mapped[StatusClass] = mapped_column(enum_column(StatusClass))
    count: Mapped[int]
    sum_ms: Mapped[float]
    max_ms: Mapped[float]
    sketch: Mapped[bytes] = mapped_column(LargeBinary)
    # The slowest requests: [{"duration_ms", "request_id", "at"}], slowest first.
    exemplars: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class RequestMinute(RequestTally, Base):
    """One process's requests of one minute of one service for one route, method and
    status class, from one source."""

    __tablename__ = "request_minutes"
    __table_args__ = (
        Index("ix_request_minutes_minute", "minute"),
        Index("ix_request_minutes_rolled_up_minute", "rolled_up", "minute"),
        Index("ix_request_minutes_service_source_minute", "service", "source", "minute"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process: Mapped[str] = mapped_column(String(64))
    minute: Mapped[datetime]
    rolled_up: Mapped[bool] = mapped_column(default=False)


class RequestHour(RequestTally, Base):
    """Requests of one hour of one service for one route, method, status class and source,
    every process merged."""

    __tablename__ = "request_hours"
    __table_args__ = (
        Index("ix_request_hours_hour", "hour"),
        Index("ix_request_hours_rolled_up_hour", "rolled_up", "hour"),
        Index("ix_request_hours_service_source_hour", "service", "source", "hour"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime]
    rolled_up: Mapped[bool] = mapped_column(default=False, server_default=false())


class RequestDay(RequestTally, Base):
    """Requests of one UTC day of one service for one route, method, status class and
    source: the day's hour rows merged."""

    __tablename__ = "request_days"
    __table_args__ = (
        Index("ix_request_days_day", "day"),
        Index("ix_request_days_service_source_day", "service", "source", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[datetime]
