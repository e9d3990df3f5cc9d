"""The stretches of time the performance answers measure: "the last N hours (or days)" as a
rolling window of exactly that length ending now, and the windows of the same length before.

At 06:02:40, the last hour is 05:02 to now, and the hour before it 04:02 to 05:02: edges are
to the minute, since minute rows are kept for ``performance_rollup_after_days``. An edge
older than that can only be read from hour rows, so it moves back to the start of its hour
(the window grows by less than an hour rather than losing requests) and the window says
so: its precision is ``hour``, and :meth:`Windows.edges_note` words it for the answer's note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.core.hours import hour_floor
from app.schemas.performance import MeasurementWindow, WindowPrecision


def minute_floor(moment: datetime) -> datetime:
    """The start of the minute ``moment`` falls in."""
    return moment.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Span:
    """``[start, end)``, and where the start would have been with minute rows for it."""

    start: datetime
    end: datetime
    asked_start: datetime

    @property
    def precision(self) -> WindowPrecision:
        # A later window's start moves only if an earlier one's did, so the start says it.
        return WindowPrecision.MINUTE if self.start == self.asked_start else WindowPrecision.HOUR

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    def measured(self) -> MeasurementWindow:
        """The window as the answers show it."""
        return MeasurementWindow(
            start=self.start,
            end=self.end,
            hours=round(self.minutes / 60, 3),
            precision=self.precision,
        )


@dataclass(frozen=True)
class Windows:
    """Rolling windows as of ``now``, given how long minute rows are kept."""

    now: datetime
    minute_retention: timedelta

    def last(self, length: timedelta, count: int = 1) -> list[Span]:
        """``count`` consecutive windows of ``length``, oldest first, the last ending now."""
        anchor = minute_floor(self.now)
        asked = [anchor - back * length for back in range(count, 0, -1)]
        starts = [self.edge(asked[0], shared=False), *(self.edge(a) for a in asked[1:])]
        ends = [*starts[1:], self.now]
        return [Span(s, e, a) for s, e, a in zip(starts, ends, asked, strict=True)]

    def edge(self, moment: datetime, *, shared: bool = True) -> datetime:
        """``moment`` (a whole minute) where the minute rows it needs are still kept, else
        the start of its hour.

        The window starting at ``moment`` reads the minutes from it to the next hour; when
        the edge is ``shared`` with a window ending there, that one reads the minutes of
        the hour before it too.
        """
        oldest_read = hour_floor(moment) if shared else moment
        kept = oldest_read >= self.now - self.minute_retention
        return moment if kept else hour_floor(moment)

    def edges_note(self, spans: Mapping[str, Span]) -> str | None:
        """Which windows, by name, start at a whole hour instead; None if none does."""
        moved = [(n, span) for n, span in spans.items() if span.precision is WindowPrecision.HOUR]
        if not moved:
            return None
        if len(moved) > 2:
            name, span = moved[0]
            said = f"{len(moved)} windows start on the hour before their exact start, {name} " + (
                _moved(span)
            )
        else:
            said = "; ".join(f"{name} starts {_moved(span)}" for name, span in moved)
        return (
            f"Minute rows are kept for {_days(self.minute_retention)} "
            f"(performance_rollup_after_days), so older edges are whole hours: {said}."
        )


def _moved(span: Span) -> str:
    return f"at {span.start:%Y-%m-%d %H:%M} UTC instead of {span.asked_start:%H:%M}"


def _days(length: timedelta) -> str:
    days = length / timedelta(days=1)
    return f"{days:g} day" + ("" if days == 1 else "s")


def joined(*notes: str | None) -> str | None:
    """The notes that are there, as one; None if none is."""
    found = [note for note in notes if note]
    return " ".join(found) if found else None
