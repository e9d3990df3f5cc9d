"""The server's vectorised readers and writers of the agent's quantile sketch format.

There is one sketch: :class:`watchkeeper_agent.sketch.QuantileSketch` (pure Python, so the
agent runs inside any web app), re-exported here with its format constants. What only the
server needs is speed over many sketches at once, which numpy gives:
:func:`from_many_bytes` merges thousands of serialised sketches (an analysis window, an
hour's rollup) in a handful of array operations, and :func:`encode_groups` serialises the
sketches of millions of values for bulk imports and benchmarks. Both read and write exactly
the format ``QuantileSketch.to_bytes`` does, so concatenating serialised sketches and
decoding the result as a whole is their merge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from watchkeeper_agent.sketch import (
    COUNT_BITS,
    DEFAULT_BIN_LIMIT,
    FORMAT_VERSION,
    GAMMA,
    HEADER,
    INDEX_BIAS,
    INDEX_MULTIPLIER,
    MAX_INDEXABLE_MS,
    MAX_RECORD_COUNT,
    MIN_INDEXABLE_MS,
    RELATIVE_ACCURACY,
    WORD_SIZE,
    QuantileSketch,
    SketchFormatError,
)

__all__ = [
    "DEFAULT_BIN_LIMIT",
    "GAMMA",
    "MAX_INDEXABLE_MS",
    "MIN_INDEXABLE_MS",
    "RELATIVE_ACCURACY",
    "QuantileSketch",
    "SketchFormatError",
    "encode_groups",
    "from_joined",
    "from_many_bytes",
    "sketch_groups",
]

# The agent's struct header, as a numpy record: one view decodes every header at once.
_HEADER: Final = np.dtype(
    [("version", "<u8"), ("zero", "<u8"), ("sum", "<f8"), ("min", "<f8"), ("max", "<f8")]
)
assert _HEADER.itemsize == HEADER.size, "the numpy header must match the agent's"
# Fixed-width, aligned words let one numpy view decode thousands of concatenated sketches.
_WORD: Final = np.dtype("<u4")
assert _WORD.itemsize == WORD_SIZE
_HEADER_WORDS: Final = np.arange(_HEADER.itemsize // _WORD.itemsize)


def from_many_bytes(blobs: Sequence[bytes], bin_limit: int = DEFAULT_BIN_LIMIT) -> QuantileSketch:
    """Merge many serialised sketches at once, vectorised over all of them."""
    return from_joined(b"".join(blobs), [len(blob) for blob in blobs], bin_limit)


def from_joined(
    joined: bytes, lengths: Sequence[int], bin_limit: int = DEFAULT_BIN_LIMIT
) -> QuantileSketch:
    """Merge serialised sketches handed over end to end (as a store's string aggregate
    returns them), each of the given length, in order."""
    if not lengths:
        return QuantileSketch(bin_limit)
    sizes = np.asarray(lengths, dtype=np.int64)
    if (
        (sizes < _HEADER.itemsize).any()
        or (sizes % _WORD.itemsize).any()
        or int(sizes.sum()) != len(joined)
    ):
        raise SketchFormatError("sketch bytes have the wrong length")
    words = np.frombuffer(joined, dtype=_WORD)
    starts = (np.cumsum(sizes) - sizes) // _WORD.itemsize
    header_positions = starts[:, None] + _HEADER_WORDS
    headers = words[header_positions].view(_HEADER).ravel()
    if (headers["version"] != FORMAT_VERSION).any():
        raise SketchFormatError("unknown sketch format version")
    keep = np.ones(words.size, dtype=bool)
    keep[header_positions] = False
    records = words[keep]
    bins: dict[int, int] = {}
    if records.size:
        indices = (records >> COUNT_BITS).astype(np.int64) - INDEX_BIAS
        lo = int(indices.min())
        # Float weights add integers exactly up to 2**53 values, far beyond any window.
        dense = np.bincount(indices - lo, weights=records & MAX_RECORD_COUNT)
        filled = np.flatnonzero(dense)
        counts = dense[filled].astype(np.int64)
        bins = dict(zip((filled + lo).tolist(), counts.tolist(), strict=True))
    return QuantileSketch.from_parts(
        bins,
        zero=int(headers["zero"].sum()),
        total_sum=float(headers["sum"].sum()),
        low=float(headers["min"].min()),
        high=float(headers["max"].max()),
        bin_limit=bin_limit,
    )


def _words(indices: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
    """The records of buckets ``indices`` holding ``counts``, split where a count is large."""
    if counts.size and int(counts.max()) > MAX_RECORD_COUNT:
        pieces = (counts + (MAX_RECORD_COUNT - 1)) // MAX_RECORD_COUNT
        firsts = np.repeat(np.cumsum(pieces) - pieces, pieces)
        taken = (np.arange(int(pieces.sum())) - firsts) * MAX_RECORD_COUNT
        counts = np.minimum(np.repeat(counts, pieces) - taken, MAX_RECORD_COUNT)
        indices = np.repeat(indices, pieces)
    return (((indices + INDEX_BIAS) << COUNT_BITS) | counts).astype(_WORD)


def encode_groups(
    values: npt.NDArray[np.float64], groups: npt.NDArray[np.int64], size: int
) -> list[bytes]:
    """The serialised sketch of each group ``0..size-1`` of ``values``, built with numpy.

    Decodes to the same sketch as ``QuantileSketch.of(values of the group).to_bytes()``
    (records may come in another order); for bulk imports, the raw latencies of a trend's
    edge hours and benchmarks, where values by the thousand would take milliseconds, and by
    the million seconds, one :meth:`QuantileSketch.add` at a time.
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
    indices = np.ceil(np.log(values[kept]) * INDEX_MULTIPLIER).astype(np.int64)
    owners = groups[kept]
    records = np.empty(0, dtype=_WORD)
    owner_of_record = np.empty(0, dtype=np.int64)
    if indices.size:
        lo = int(indices.min())
        span = int(indices.max()) - lo + 1
        keys, counts = np.unique(owners * span + (indices - lo), return_counts=True)
        owner_of_bucket = keys // span
        pieces = np.maximum((counts + (MAX_RECORD_COUNT - 1)) // MAX_RECORD_COUNT, 1)
        records = _words(keys % span + lo, counts.astype(np.int64))
        owner_of_record = np.repeat(owner_of_bucket, pieces)
    bounds = np.searchsorted(owner_of_record, np.arange(size + 1))
    return [
        headers[group : group + 1].tobytes() + records[bounds[group] : bounds[group + 1]].tobytes()
        for group in range(size)
    ]


def sketch_groups(
    values: npt.NDArray[np.float64], groups: npt.NDArray[np.int64], size: int
) -> list[QuantileSketch]:
    """The sketch of each group ``0..size-1`` of ``values``: :func:`encode_groups`, read back.

    For a batch of requests counted at once (an OTLP trace export): the bucket arithmetic
    runs in numpy, leaving one small decode per group.
    """
    return [QuantileSketch.from_bytes(blob) for blob in encode_groups(values, groups, size)]
