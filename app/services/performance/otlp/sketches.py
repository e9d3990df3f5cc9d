"""OTLP histograms converted into our :class:`QuantileSketch`, with an exact count.

A histogram tells how many values fell in each bucket, not where in it; the conversion
counts each bucket's values at one representative inside it, so the count is exact and a
quantile is off by at most the distance from that representative to the bucket's edges,
plus the sketch's own :data:`~app.vocabulary.sketch.RELATIVE_ACCURACY` (0.5%) on top:

* **Explicit buckets** ``(lower, upper]``: the representative is the arithmetic midpoint,
  so a quantile is within **half the width of the bucket that holds it** (absolute, in ms)
  plus 0.5%. The first bucket starts at 0 (durations are not negative). The +Inf bucket has
  no upper edge: with the point's ``max`` it is ``(last bound, max]``, without it its values
  read as the last bound, an underestimate of unknown size. With the OpenTelemetry default
  boundaries (5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000 ms) a
  p95 near 3 s is thus only known to ±1.25 s, unlike our sketches' 0.5%.
* **Exponential buckets** ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``: the
  representative ``2 * base**(i+1) / (1 + base)`` is within relative error
  ``(base - 1) / (base + 1)`` of every value in the bucket: 4.3% at scale 3, 0.14% at
  scale 8, 0.001% at scale 15. From scale 7 up that is finer than our sketch's buckets, so
  the sketch's 0.5% dominates.

When the point carries ``min`` and ``max`` every bucket is narrowed to ``[min, max]`` and
one value is counted at each extreme, so the sketch's minimum and maximum (its 0th and
100th percentiles) are exact. The sketch's sum is that of the representatives; the point's
exact sum is on the :class:`~app.services.performance.otlp.metrics.HistogramPoint`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from app.vocabulary.sketch import MAX_INDEXABLE_MS, QuantileSketch

_LOG_MAX: Final = math.log(MAX_INDEXABLE_MS)


def explicit_to_sketch(
    bounds_ms: Sequence[float],
    counts: Sequence[int],
    *,
    min_ms: float | None = None,
    max_ms: float | None = None,
) -> QuantileSketch:
    """A sketch of an explicit-bucket histogram (``len(counts) == len(bounds_ms) + 1``)."""
    floor, ceiling = _limits(min_ms, max_ms)
    weighted: list[tuple[float, int]] = []
    lower = 0.0
    for position, count in enumerate(counts):
        if position < len(bounds_ms):
            upper = bounds_ms[position]
        else:  # the +Inf bucket reaches the maximum when known, else stays at the last bound
            upper = lower if max_ms is None else max(ceiling, lower)
        if count:
            low = min(max(lower, floor), ceiling)
            high = min(max(upper, floor), ceiling)
            weighted.append(((low + high) / 2, count))
        lower = upper
    return _sketch(weighted, min_ms, max_ms)


def exponential_to_sketch(
    scale: int,
    zero_count: int,
    offset: int,
    counts: Sequence[int],
    *,
    unit_ms: float = 1.0,
    min_ms: float | None = None,
    max_ms: float | None = None,
) -> QuantileSketch:
    """A sketch of an exponential histogram's zero and positive buckets.

    ``counts[k]`` counts values in ``(base**(offset + k), base**(offset + k + 1)]`` of the
    histogram's unit; ``unit_ms`` is that unit in milliseconds (1000 for seconds).
    """
    floor, ceiling = _limits(min_ms, max_ms)
    weighted: list[tuple[float, int]] = []
    if zero_count:
        weighted.append((floor, zero_count))
    log_base = math.log(2.0) * 2.0**-scale
    # log of 2 * base / (1 + base) * unit_ms, computed without overflowing base.
    shift = math.log(2.0) + log_base - math.log1p(math.exp(log_base)) + math.log(unit_ms)
    for position, count in enumerate(counts):
        if count:
            # In logs so that a huge index saturates at the largest duration, not overflows.
            log_value = min((offset + position) * log_base + shift, _LOG_MAX)
            weighted.append((min(max(math.exp(log_value), floor), ceiling), count))
    return _sketch(weighted, min_ms, max_ms)


def _limits(min_ms: float | None, max_ms: float | None) -> tuple[float, float]:
    """The range every representative is narrowed to."""
    floor = 0.0 if min_ms is None else min(max(min_ms, 0.0), MAX_INDEXABLE_MS)
    ceiling = MAX_INDEXABLE_MS if max_ms is None else min(max(max_ms, floor), MAX_INDEXABLE_MS)
    return floor, ceiling


def _sketch(
    weighted: list[tuple[float, int]], min_ms: float | None, max_ms: float | None
) -> QuantileSketch:
    """The sketch of ``(value, count)`` pairs in ascending order, one count moved to each
    known extreme so that the sketch's minimum and maximum are exact."""
    floor, ceiling = _limits(min_ms, max_ms)
    extremes: list[float] = []
    if weighted and min_ms is not None:
        value, count = weighted[0]
        weighted[0] = (value, count - 1)
        extremes.append(floor)
    if weighted and max_ms is not None and weighted[-1][1]:
        value, count = weighted[-1]
        weighted[-1] = (value, count - 1)
        extremes.append(ceiling)
    sketch = QuantileSketch()
    for value, count in (*weighted, *((extreme, 1) for extreme in extremes)):
        if count:
            sketch.add(value, count)
    return sketch
