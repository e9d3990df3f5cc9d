"""Stored sketches merged many groups at a time, and their quantiles, in numpy.

An analysis window holds tens of thousands of stored sketches spread over hundreds of
endpoints. The store's aggregate query hands each group (an endpoint of a window) over as
the concatenation of its serialised sketches and their lengths; :func:`decode_groups` merges
every group in one ``bincount`` over all of their records. Each result is a
:class:`Histogram`: the non-empty buckets as sorted numpy arrays, the zero count and the
exact extremes. Histograms merge with :func:`merge` (overall, per service, two stretches of
one endpoint) without decoding anything again.

A histogram answers exactly as :class:`~app.vocabulary.sketch.QuantileSketch` would for the
same sketches: the same ranks, bucket estimates, clamping to the extremes and collapse of
the lowest buckets past the bin limit; only without a Python loop per bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from watchkeeper_agent.sketch import (
    COUNT_BITS,
    FORMAT_VERSION,
    GAMMA,
    HEADER,
    INDEX_BIAS,
    INDEX_MULTIPLIER,
    MAX_RECORD_COUNT,
    WORD_SIZE,
)

from app.vocabulary.sketch import DEFAULT_BIN_LIMIT, MIN_INDEXABLE_MS, SketchFormatError

Indices = npt.NDArray[np.int64]

# The agent's struct header and record word, as numpy types.
_HEADER: Final = np.dtype(
    [("version", "<u8"), ("zero", "<u8"), ("sum", "<f8"), ("min", "<f8"), ("max", "<f8")]
)
assert _HEADER.itemsize == HEADER.size, "the numpy header must match the agent's"
_WORD: Final = np.dtype("<u4")
_NONE: Final = np.empty(0, np.int64)
_BIN_VALUE_FACTOR: Final = 2 / (1 + GAMMA)


class Histogram:
    """Merged bucket counts of some sketches: ``indices`` ascending, every count positive."""

    __slots__ = ("_running", "count", "counts", "high", "indices", "low", "zero")

    def __init__(
        self, indices: Indices, counts: Indices, *, zero: int, low: float, high: float
    ) -> None:
        self.indices = indices
        self.counts = counts
        self.zero = zero
        self.low = low
        self.high = high
        # Requests at or below each bucket, the zero bucket included.
        self._running = np.cumsum(counts) + zero
        self.count = int(self._running[-1]) if counts.size else zero

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """The values at ranks ``floor(q * (count - 1))``, as ``QuantileSketch.quantiles``."""
        if not self.count:
            return [None] * len(qs)
        ranks = [math.floor(q * (self.count - 1)) for q in qs]
        # The first bucket whose running count passes each rank, in one search.
        at = np.searchsorted(self._running, ranks, side="right")
        buckets = _at(self.indices, at)
        return [self._value(rank, bucket) for rank, bucket in zip(ranks, buckets, strict=True)]

    def _value(self, rank: int, bucket: int) -> float:
        """The value at ``rank``, which the bucket of index ``bucket`` holds."""
        if rank == 0:
            return self.low
        if rank == self.count - 1:
            return self.high
        if rank < self.zero:
            return 0.0
        estimate = _BIN_VALUE_FACTOR * GAMMA**bucket
        return min(max(estimate, self.low), self.high)

    def quantile(self, q: float) -> float | None:
        """The value at rank ``floor(q * (count - 1))``, or None when empty."""
        return self.quantiles((q,))[0]

    def fraction_at_most(self, threshold_ms: float) -> float | None:
        """Share of values ``<= threshold_ms`` (to the bucket width), or None when empty."""
        if not self.count:
            return None
        if threshold_ms < self.low:
            return 0.0
        if threshold_ms >= self.high:
            return 1.0
        if threshold_ms <= MIN_INDEXABLE_MS:
            return self.zero / self.count
        limit = math.ceil(math.log(threshold_ms) * INDEX_MULTIPLIER)
        inside = int(np.searchsorted(self.indices, limit, side="right"))
        below = int(self._running[inside - 1]) if inside else self.zero
        return below / self.count


EMPTY: Final = Histogram(_NONE, _NONE, zero=0, low=math.inf, high=-math.inf)


def _at(indices: Indices, positions: npt.NDArray[np.intp]) -> list[int]:
    """The bucket indices at ``positions``, as ints (a position past the end reads the last
    one: only ranks answered without a bucket land there)."""
    if not indices.size:
        return [0] * positions.size
    return indices[np.minimum(positions, indices.size - 1)].tolist()  # type: ignore[no-any-return]


def merge(histograms: Iterable[Histogram], bin_limit: int = DEFAULT_BIN_LIMIT) -> Histogram:
    """One histogram of everything the given ones counted."""
    parts = [h for h in histograms if h.count]
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    indices = np.concatenate([h.indices for h in parts])
    zero = sum(h.zero for h in parts)
    low, high = min(h.low for h in parts), max(h.high for h in parts)
    if not indices.size:
        return Histogram(indices, indices, zero=zero, low=low, high=high)
    lo = int(indices.min())
    dense = np.bincount(indices - lo, weights=np.concatenate([h.counts for h in parts]))
    filled = np.flatnonzero(dense)
    return _collapsed(
        filled + lo, dense[filled].astype(np.int64), zero=zero, low=low, high=high, limit=bin_limit
    )


def _collapsed(
    indices: Indices, counts: Indices, *, zero: int, low: float, high: float, limit: int
) -> Histogram:
    """The histogram, its buckets below the kept span folded into the span's lowest one."""
    if indices.size and indices[-1] - indices[0] >= limit:
        floor = int(indices[-1]) - limit + 1
        kept = indices >= floor
        folded = int(counts[~kept].sum())
        indices, counts = indices[kept], counts[kept].copy()
        if indices.size and indices[0] == floor:
            counts[0] += folded
        else:
            indices = np.concatenate([[floor], indices])
            counts = np.concatenate([[folded], counts])
    return Histogram(indices, counts, zero=zero, low=low, high=high)


def decode_groups(
    headers: Sequence[bytes], records: Sequence[bytes], bin_limit: int = DEFAULT_BIN_LIMIT
) -> list[Histogram]:
    """The merged histogram of each group, from the concatenation of its sketches'
    headers (``headers[g]``, 40 bytes each) and of their records (``records[g]``)."""
    if len(headers) != len(records):
        raise ValueError("every group needs its headers and its records")
    if any(not h or len(h) % _HEADER.itemsize for h in headers) or any(
        len(r) % WORD_SIZE for r in records
    ):
        raise SketchFormatError("sketch bytes have the wrong length")
    if not headers:
        return []
    # Every group's headers at once: one view, one reduction per field.
    parts = np.frombuffer(b"".join(headers), dtype=_HEADER)
    if (parts["version"] != FORMAT_VERSION).any():
        raise SketchFormatError("unknown sketch format version")
    sketches = np.fromiter(map(len, headers), np.int64, len(headers)) // _HEADER.itemsize
    firsts = np.cumsum(sketches) - sketches
    zeros = np.add.reduceat(parts["zero"], firsts).tolist()
    lows = np.minimum.reduceat(parts["min"], firsts).tolist()
    highs = np.maximum.reduceat(parts["max"], firsts).tolist()
    return [
        _collapsed(*_buckets(record), zero=zero, low=low, high=high, limit=bin_limit)
        for record, zero, low, high in zip(records, zeros, lows, highs, strict=True)
    ]


def _buckets(records: bytes) -> tuple[Indices, Indices]:
    """The non-empty buckets of one group's records, ascending, with their summed counts.

    Group by group: measured, one table over every group's records together (each
    group's span of buckets a stretch of it) was slower, not faster."""
    words = np.frombuffer(records, dtype=_WORD)
    if not words.size:
        return _NONE, _NONE
    # Bucket indices stay biased (non-negative) until the end: bincount needs that.
    biased = words >> COUNT_BITS
    lo = int(biased.min())
    dense = np.bincount(biased - lo, weights=words & MAX_RECORD_COUNT)
    filled = np.flatnonzero(dense)
    return filled + (lo - INDEX_BIAS), dense[filled].astype(np.int64)
