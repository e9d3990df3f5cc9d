"""A mergeable quantile sketch for response times (DDSketch-style log buckets), pure Python.

A value ``x`` (milliseconds) above :data:`MIN_INDEXABLE_MS` is counted in bucket
``ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``; reporting the bucket as
``2 * gamma**i / (1 + gamma)`` is then within relative error ``a`` of every value in it.
So every quantile (rank ``floor(q * (n - 1))`` of the sorted data, numpy's
``method="lower"``) is within :data:`RELATIVE_ACCURACY` of the exact value, and merging two
sketches is adding their counts: per-minute sketches roll up into hours and windows exactly.
Values in ``[0, MIN_INDEXABLE_MS]`` share one zero bucket reported as ``0.0``.

The span of bucket indices is bounded (``bin_limit``); past it the lowest buckets collapse
into one, as DDSketch's ``CollapsingLowestDenseStore`` does, so only the fastest requests
lose accuracy and memory stays bounded.

Serialised form (version 1, little-endian, packed), the one the agent ships and the server
stores; it is built so that many sketches can be merged with a handful of numpy calls on
the server rather than a Python loop per sketch:

* a 40-byte header (:data:`HEADER`): ``u8`` version, ``u8`` zero-bucket count, ``f8`` sum,
  ``f8`` min, ``f8`` max (min/max are ``+inf``/``-inf`` when empty);
* then one ``u4`` word per non-empty bucket: ``(index + INDEX_BIAS) << COUNT_BITS | count``.
  A count above :data:`MAX_RECORD_COUNT` is split over several words with the same index;
  readers add them.

Concatenating serialised sketches and decoding the result as a whole is their merge. The
count is not stored: it is the zero count plus the records' counts.

This module needs nothing but the standard library, so the agent can run inside any web
app; the server's vectorised readers and writers of the same format build on it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final, Self

RELATIVE_ACCURACY: Final = 0.005
GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
# Below a nanosecond no response time is meaningful; such values go to the zero bucket.
MIN_INDEXABLE_MS: Final = 1e-6
# About 31 years: anything larger is a clock bug, and indices must fit the record's int16.
MAX_INDEXABLE_MS: Final = 1e12
# 4096 buckets span a factor of 6e17 (1 ns to 19 years): real durations never collapse.
DEFAULT_BIN_LIMIT: Final = 4096
FORMAT_VERSION: Final = 1

# ``ceil(log(x) * INDEX_MULTIPLIER)`` is the bucket index of ``x``.
INDEX_MULTIPLIER: Final = 1 / math.log(GAMMA)
HEADER: Final = struct.Struct("<QQddd")
WORD_SIZE: Final = 4
COUNT_BITS: Final = 16
MAX_RECORD_COUNT: Final = 2**COUNT_BITS - 1
INDEX_BIAS: Final = 2**15

_BIN_VALUE_FACTOR: Final = 2 / (1 + GAMMA)
_WORDS: Final = struct.Struct("<I")


class SketchFormatError(ValueError):
    """The bytes are not a serialised sketch this version can read."""


class QuantileSketch:
    """Counts of values in log-spaced buckets, plus exact count, sum, min and max."""

    __slots__ = ("_bin_limit", "_bins", "_count", "_hi", "_lo", "_max", "_min", "_sum", "_zero")

    def __init__(self, bin_limit: int = DEFAULT_BIN_LIMIT) -> None:
        if bin_limit < 1:
            raise ValueError("bin_limit must be at least 1")
        self._bin_limit = bin_limit
        self._bins: dict[int, int] = {}
        # Lowest and highest bucket index held; only meaningful while _bins is non-empty.
        self._lo = 0
        self._hi = 0
        self._zero = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    @property
    def count(self) -> int:
        """How many values were added."""
        return self._count

    @property
    def sum(self) -> float:
        """The sum of the values added, not estimated from buckets."""
        return self._sum

    @property
    def min(self) -> float | None:
        """The smallest value added, or None when empty."""
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        """The largest value added, or None when empty."""
        return self._max if self._count else None

    @property
    def zero_count(self) -> int:
        """How many values fell in the zero bucket."""
        return self._zero

    @property
    def bins(self) -> Mapping[int, int]:
        """A read-only view of bucket index to count."""
        return MappingProxyType(self._bins)

    def add(self, value: float, count: int = 1) -> None:
        """Count a value (milliseconds, ``0 <= value <= MAX_INDEXABLE_MS``) ``count`` times."""
        if count < 1:
            raise ValueError(f"count {count!r} must be at least 1")
        if value > MIN_INDEXABLE_MS:
            if value > MAX_INDEXABLE_MS:
                raise ValueError(f"value {value!r} exceeds {MAX_INDEXABLE_MS} ms")
            index = math.ceil(math.log(value) * INDEX_MULTIPLIER)
            bins = self._bins
            if index in bins:
                bins[index] += count
            else:
                self._open_bin(index, count)
        elif value >= 0.0:
            self._zero += count
        else:  # negative, or NaN: every comparison above was false
            raise ValueError(f"value {value!r} is not a non-negative duration")
        self._count += count
        self._sum += value * count
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def merge(self, other: QuantileSketch) -> None:
        """Add every value counted by ``other`` into this sketch."""
        if not other._count:
            return
        bins = self._bins
        for index, count in other._bins.items():
            bins[index] = bins.get(index, 0) + count
        self._absorb_totals(other._zero, other._count, other._sum, other._min, other._max)
        self._rebound()

    def quantile(self, q: float) -> float | None:
        """The value at rank ``floor(q * (count - 1))``, or None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several quantiles in one pass over the buckets."""
        if any(not 0.0 <= q <= 1.0 for q in qs):
            raise ValueError("quantiles must lie in [0, 1]")
        results: list[float | None] = [None] * len(qs)
        if not self._count:
            return results
        ranks = sorted(
            (math.floor(q * (self._count - 1)), position) for position, q in enumerate(qs)
        )
        last = self._count - 1
        walk = self._ascending()
        estimate, seen = next(walk)
        for rank, position in ranks:
            while rank >= seen:
                estimate, seen = next(walk)
            # The extremes are known exactly, so the first and last ranks need no estimate.
            results[position] = self._min if rank == 0 else self._max if rank == last else estimate
        return results

    def _ascending(self) -> Iterator[tuple[float, int]]:
        """Each non-empty bucket's estimate with the running count, smallest first."""
        seen = self._zero
        if seen:
            yield 0.0, seen
        for index in sorted(self._bins):
            seen += self._bins[index]
            # Clamping to the exact extremes can only move the estimate closer.
            estimate = _BIN_VALUE_FACTOR * GAMMA**index
            yield min(max(estimate, self._min), self._max), seen

    def fraction_at_most(self, threshold_ms: float) -> float | None:
        """Share of values ``<= threshold_ms`` (to the bucket width), or None when empty."""
        if not self._count:
            return None
        if threshold_ms < self._min:
            return 0.0
        if threshold_ms >= self._max:
            return 1.0
        if threshold_ms <= MIN_INDEXABLE_MS:
            return self._zero / self._count
        limit = math.ceil(math.log(threshold_ms) * INDEX_MULTIPLIER)
        below = self._zero + sum(n for index, n in self._bins.items() if index <= limit)
        return below / self._count

    def to_bytes(self) -> bytes:
        """The compact serialised form described in the module docstring."""
        header = HEADER.pack(FORMAT_VERSION, self._zero, self._sum, self._min, self._max)
        words = bytearray()
        for index, count in self._bins.items():
            record = (index + INDEX_BIAS) << COUNT_BITS
            # Full records first, then the remainder, as the server's vectorised writer does.
            while count > MAX_RECORD_COUNT:
                words += _WORDS.pack(record | MAX_RECORD_COUNT)
                count -= MAX_RECORD_COUNT
            words += _WORDS.pack(record | count)
        return header + bytes(words)

    @classmethod
    def from_bytes(cls, data: bytes, bin_limit: int = DEFAULT_BIN_LIMIT) -> Self:
        """Rebuild a sketch from :meth:`to_bytes` output."""
        if len(data) < HEADER.size or len(data) % WORD_SIZE:
            raise SketchFormatError("sketch bytes have the wrong length")
        version, zero, total_sum, low, high = HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise SketchFormatError("unknown sketch format version")
        bins: dict[int, int] = {}
        for (word,) in _WORDS.iter_unpack(memoryview(data)[HEADER.size :]):
            index = (word >> COUNT_BITS) - INDEX_BIAS
            bins[index] = bins.get(index, 0) + (word & MAX_RECORD_COUNT)
        return cls.from_parts(
            {index: bins[index] for index in sorted(bins) if bins[index]},
            zero=zero,
            total_sum=total_sum,
            low=low,
            high=high,
            bin_limit=bin_limit,
        )

    @classmethod
    def from_parts(
        cls,
        bins: Mapping[int, int],
        *,
        zero: int,
        total_sum: float,
        low: float,
        high: float,
        bin_limit: int = DEFAULT_BIN_LIMIT,
    ) -> Self:
        """A sketch of decoded parts: non-empty bucket counts, the zero count and the totals.

        What a reader of the serialised form (this module's, or the server's vectorised one
        over many sketches at once) builds its result with.
        """
        sketch = cls(bin_limit)
        total = zero + sum(bins.values())
        if total:
            sketch._bins = dict(bins)
            sketch._absorb_totals(zero, total, total_sum, low, high)
            sketch._rebound()
        return sketch

    @classmethod
    def of(cls, values: Iterable[float], bin_limit: int = DEFAULT_BIN_LIMIT) -> Self:
        """A sketch of the given values."""
        sketch = cls(bin_limit)
        for value in values:
            sketch.add(value)
        return sketch

    def _open_bin(self, index: int, count: int) -> None:
        bins = self._bins
        if not bins:
            self._lo = self._hi = index
        elif index < self._lo:
            self._lo = index
        elif index > self._hi:
            self._hi = index
        bins[index] = count
        if self._hi - self._lo >= self._bin_limit:
            self._collapse()

    def _absorb_totals(self, zero: int, count: int, total: float, low: float, high: float) -> None:
        self._zero += zero
        self._count += count
        self._sum += total
        self._min = min(self._min, low)
        self._max = max(self._max, high)

    def _rebound(self) -> None:
        """Recompute the index span after bulk changes and collapse if it is too wide."""
        if self._bins:
            self._lo, self._hi = min(self._bins), max(self._bins)
            if self._hi - self._lo >= self._bin_limit:
                self._collapse()

    def _collapse(self) -> None:
        """Fold every bucket below the kept span into the span's lowest bucket."""
        floor = self._hi - self._bin_limit + 1
        bins = self._bins
        folded = 0
        for index in [index for index in bins if index < floor]:
            folded += bins.pop(index)
        bins[floor] = bins.get(floor, 0) + folded
        self._lo = floor
