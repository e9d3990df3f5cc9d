"""Whole hours and days, the grains of the rollups: health hours, request hours and days, trend
windows. Days are UTC days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)


def hour_floor(moment: datetime) -> datetime:
    """The start of the hour ``moment`` falls in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    """The first hour boundary at or after ``moment``."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def day_floor(moment: datetime) -> datetime:
    """The start of the (UTC) day ``moment`` falls in."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def day_ceil(moment: datetime) -> datetime:
    """The first day boundary at or after ``moment``."""
    floor = day_floor(moment)
    return floor if floor == moment else floor + DAY


def split_by_hour(start: datetime, end: datetime) -> Iterator[tuple[datetime, float]]:
    """``(hour, seconds)`` pieces of ``[start, end)``, one per hour it touches."""
    cursor = start
    while cursor < end:
        boundary = min(hour_floor(cursor) + HOUR, end)
        yield hour_floor(cursor), (boundary - cursor).total_seconds()
        cursor = boundary
