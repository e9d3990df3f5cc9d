"""Whole hours, the grain of every rollup: health hours, request hours, trend windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

HOUR: Final = timedelta(hours=1)


def hour_floor(moment: datetime) -> datetime:
    """The start of the hour ``moment`` falls in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    """The first hour boundary at or after ``moment``."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def split_by_hour(start: datetime, end: datetime) -> Iterator[tuple[datetime, float]]:
    """``(hour, seconds)`` pieces of ``[start, end)``, one per hour it touches."""
    cursor = start
    while cursor < end:
        boundary = min(hour_floor(cursor) + HOUR, end)
        yield hour_floor(cursor), (boundary - cursor).total_seconds()
        cursor = boundary
