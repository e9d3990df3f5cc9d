"""Ingest state: the last point of each cumulative OTLP metric stream, and the agent batches
already stored.

An exporter with cumulative temporality sends running totals; the receiver counts the
difference against the stream's previous point. That point is kept in the store, not in a
process, so whichever replica takes the next export computes the same difference. A point
whose start time differs from the stored one is a restarted exporter: it begins afresh.

A watchkeeper-agent retries a batch under the same id until it hears an answer; the id is
stored in the transaction that stores the batch's rows, so a retry is recognised and
stored no second time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class IngestStream(Base):
    """The latest cumulative point of one metric stream (resource, metric and attributes)."""

    __tablename__ = "ingest_streams"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A digest of what identifies the stream, so any attribute set fits one indexed column.
    stream_key: Mapped[str] = mapped_column(String(64), unique=True)
    service: Mapped[str] = mapped_column(String(128))
    start_time_unix_nano: Mapped[int] = mapped_column(BigInteger)
    time_unix_nano: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)
    sum_ms: Mapped[float]
    # The cumulative bucket counts as the receiver keeps them (bucket name -> count).
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IngestBatch(Base):
    """A watchkeeper-agent batch whose buckets are stored."""

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(32), unique=True)
    service: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
