"""A mergeable quantile sketch for response times (DDSketch-style log buckets).

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

Serialised form (version 1, little-endian, packed), built so that many sketches can be
merged with a handful of numpy calls rather than a Python loop per sketch:

* a 40-byte header: ``u8`` version, ``u8`` zero-bucket count, ``f8`` sum, ``f8`` min,
  ``f8`` max (min/max are ``+inf``/``-inf`` when empty);
* then one ``u4`` word per non-empty bucket: ``(index + 2**15) << 16 | count``. A count
  above ``2**16 - 1`` is split over several words with the same index; readers add them.

Concatenating serialised sketches and decoding the result as a whole is their merge, which
is what :meth:`QuantileSketch.from_many_bytes` does.

The count is not stored: it is the zero count plus the records' counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final, Self

import numpy as np
import numpy.typing as npt

RELATIVE_ACCURACY: Final = 0.005
GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
# Below a nanosecond no response time is meaningful; such values go to the zero bucket.
MIN_INDEXABLE_MS: Final = 1e-6
# About 31 years: anything larger is a clock bug, and indices must fit the record's int16.
MAX_INDEXABLE_MS: Final = 1e12
# 4096 buckets span a factor of 6e17 (1 ns to 19 years): real durations never collapse.
DEFAULT_BIN_LIMIT: Final = 4096
FORMAT_VERSION: Final = 1

_MULTIPLIER: Final = 1 / math.log(GAMMA)
_BIN_VALUE_FACTOR: Final = 2 / (1 + GAMMA)
_HEADER: Final = np.dtype(
    [("version", "<u8"), ("zero", "<u8"), ("sum", "<f8"), ("min", "<f8"), ("max", "<f8")]
)
# Fixed-width, aligned words let one numpy view decode thousands of concatenated sketches.
_WORD: Final = np.dtype("<u4")
_HEADER_WORDS: Final = np.arange(_HEADER.itemsize // _WORD.itemsize)
_COUNT_BITS: Final = 16
_MAX_RECORD_COUNT: Final = 2**_COUNT_BITS - 1
_INDEX_BIAS: Final = 2**15


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
            index = math.ceil(math.log(value) * _MULTIPLIER)
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
        limit = math.ceil(math.log(threshold_ms) * _MULTIPLIER)
        below = self._zero + sum(n for index, n in self._bins.items() if index <= limit)
        return below / self._count

    def to_bytes(self) -> bytes:
        """The compact serialised form described in the module docstring."""
        header = np.array(
            [(FORMAT_VERSION, self._zero, self._sum, self._min, self._max)], dtype=_HEADER
        )
        return header.tobytes() + _records(self._bins).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, bin_limit: int = DEFAULT_BIN_LIMIT) -> Self:
        """Rebuild a sketch from :meth:`to_bytes` output."""
        return cls.from_many_bytes((data,), bin_limit)

    @classmethod
    def from_many_bytes(cls, blobs: Sequence[bytes], bin_limit: int = DEFAULT_BIN_LIMIT) -> Self:
        """Merge many serialised sketches at once, vectorised over all of them."""
        sketch = cls(bin_limit)
        if not blobs:
            return sketch
        lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
        if (lengths < _HEADER.itemsize).any() or (lengths % _WORD.itemsize).any():
            raise SketchFormatError("sketch bytes have the wrong length")
        words = np.frombuffer(b"".join(blobs), dtype=_WORD)
        starts = (np.cumsum(lengths) - lengths) // _WORD.itemsize
        header_positions = starts[:, None] + _HEADER_WORDS
        headers = words[header_positions].view(_HEADER).ravel()
        if (headers["version"] != FORMAT_VERSION).any():
            raise SketchFormatError("unknown sketch format version")
        keep = np.ones(words.size, dtype=bool)
        keep[header_positions] = False
        records = words[keep]
        zero = int(headers["zero"].sum())
        if records.size:
            indices = (records >> _COUNT_BITS).astype(np.int64) - _INDEX_BIAS
            lo = int(indices.min())
            # Float weights add integers exactly up to 2**53 values, far beyond any window.
            dense = np.bincount(indices - lo, weights=records & _MAX_RECORD_COUNT)
            filled = np.flatnonzero(dense)
            counts = dense[filled].astype(np.int64)
            sketch._bins = dict(zip((filled + lo).tolist(), counts.tolist(), strict=True))
            total = zero + int(counts.sum())
        else:
            total = zero
        if total:
            sketch._absorb_totals(
                zero,
                total,
                float(headers["sum"].sum()),
                float(headers["min"].min()),
                float(headers["max"].max()),
            )
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


def _records(bins: Mapping[int, int]) -> npt.NDArray[np.uint32]:
    """One word per bucket, splitting counts too large for one record."""
    indices = np.fromiter(bins.keys(), dtype=np.int64, count=len(bins))
    counts = np.fromiter(bins.values(), dtype=np.int64, count=len(bins))
    return _words(indices, counts)


def _words(indices: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
    """The records of buckets ``indices`` holding ``counts``, split where a count is large."""
    if counts.size and int(counts.max()) > _MAX_RECORD_COUNT:
        pieces = (counts + (_MAX_RECORD_COUNT - 1)) // _MAX_RECORD_COUNT
        firsts = np.repeat(np.cumsum(pieces) - pieces, pieces)
        taken = (np.arange(int(pieces.sum())) - firsts) * _MAX_RECORD_COUNT
        counts = np.minimum(np.repeat(counts, pieces) - taken, _MAX_RECORD_COUNT)
        indices = np.repeat(indices, pieces)
    return (((indices + _INDEX_BIAS) << _COUNT_BITS) | counts).astype(_WORD)


def encode_groups(
    values: npt.NDArray[np.float64], groups: npt.NDArray[np.int64], size: int
) -> list[bytes]:
    """The serialised sketch of each group ``0..size-1`` of ``values``, built with numpy.

    Decodes to the same sketch as ``QuantileSketch.of(values of the group).to_bytes()``
    (records may come in another order); meant for bulk imports and benchmarks, where
    millions of values would take seconds one :meth:`QuantileSketch.add` at a time.
    """
    if values.size and (values.min() < 0 or values.max() > MAX_INDEXABLE_MS):
        raise ValueError("values must be durations in [0, MAX_INDEXABLE_MS] ms")
    headers = np.zeros(size, dtype=_HEADER)
    headers["version"] = FORMAT_VERSION
    zero = values <= MIN_INDEXABLE_MS
    headers["zero"] = np.bincount(groups[zero], minlength=size)
    headers["sum"] = np.bincount(groups, weights=values, minlength=size)
    headers["min"], headers["max"] = math.inf, -math.inf
    np.minimum.at(headers["min"], groups, values)
    np.maximum.at(headers["max"], groups, values)
    kept = ~zero
    indices = np.ceil(np.log(values[kept]) * _MULTIPLIER).astype(np.int64)
    owners = groups[kept]
    records = np.empty(0, dtype=_WORD)
    owner_of_record = np.empty(0, dtype=np.int64)
    if indices.size:
        lo = int(indices.min())
        span = int(indices.max()) - lo + 1
        keys, counts = np.unique(owners * span + (indices - lo), return_counts=True)
        owner_of_bucket = keys // span
        pieces = np.maximum((counts + (_MAX_RECORD_COUNT - 1)) // _MAX_RECORD_COUNT, 1)
        records = _words(keys % span + lo, counts.astype(np.int64))
        owner_of_record = np.repeat(owner_of_bucket, pieces)
    bounds = np.searchsorted(owner_of_record, np.arange(size + 1))
    return [
        headers[group : group + 1].tobytes() + records[bounds[group] : bounds[group + 1]].tobytes()
        for group in range(size)
    ]
