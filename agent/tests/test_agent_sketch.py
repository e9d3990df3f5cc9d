"""The one sketch, written by the agent and read by the server's vectorised readers.

The server keeps only numpy readers and writers of the format (``app.vocabulary.sketch``),
so whatever the agent writes must read back there unchanged, alone or merged with others.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from watchkeeper_agent.sketch import MAX_INDEXABLE_MS, QuantileSketch, SketchFormatError

from app.vocabulary.sketch import encode_groups, from_many_bytes

durations = st.one_of(
    st.floats(min_value=0.0, max_value=MAX_INDEXABLE_MS, allow_nan=False),
    st.floats(min_value=0.0, max_value=10.0),  # around the zero bucket and small buckets
    st.sampled_from([0.0, 1e-6, 1e-7, 1.0, 250.0]),
)
weighted = st.lists(st.tuples(durations, st.integers(min_value=1, max_value=200_000)), max_size=40)
limits = st.integers(min_value=1, max_value=64) | st.just(4096)
QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def sketch_of(values: list[tuple[float, int]], limit: int = 4096) -> QuantileSketch:
    sketch = QuantileSketch(limit)
    for value, count in values:
        sketch.add(value, count)
    return sketch


class TestReadByTheServer:
    @settings(max_examples=200)
    @given(weighted, limits)
    def test_the_server_reads_the_agents_bytes_back_unchanged(
        self, values: list[tuple[float, int]], limit: int
    ) -> None:
        ours = sketch_of(values, limit)
        read_by_server = from_many_bytes([ours.to_bytes()], limit)
        assert read_by_server.to_bytes() == QuantileSketch.from_bytes(ours.to_bytes()).to_bytes()
        assert read_by_server.quantiles(QUANTILES) == ours.quantiles(QUANTILES)
        assert dict(read_by_server.bins) == dict(ours.bins)

    @settings(max_examples=100)
    @given(st.lists(weighted, min_size=1, max_size=5))
    def test_concatenated_bytes_read_by_the_server_are_the_merge(
        self, parts: list[list[tuple[float, int]]]
    ) -> None:
        sketches = [sketch_of(part) for part in parts]
        merged = QuantileSketch()
        for sketch in sketches:
            merged.merge(sketch)
        at_once = from_many_bytes([sketch.to_bytes() for sketch in sketches])
        assert at_once.count == merged.count
        assert dict(at_once.bins) == dict(merged.bins)
        assert at_once.quantiles(QUANTILES) == merged.quantiles(QUANTILES)

    @settings(max_examples=100)
    @given(st.lists(durations, min_size=1, max_size=200))
    def test_the_servers_bulk_writer_writes_what_the_agent_reads(self, values: list[float]) -> None:
        (blob,) = encode_groups(np.array(values), np.zeros(len(values), np.int64), 1)
        ours = QuantileSketch.of(values)
        read = QuantileSketch.from_bytes(blob)
        assert dict(read.bins) == dict(ours.bins)
        assert (read.count, read.min, read.max) == (ours.count, ours.min, ours.max)


class TestRefusals:
    @pytest.mark.parametrize("value", [-1.0, float("nan"), MAX_INDEXABLE_MS * 2])
    def test_a_value_that_is_not_a_duration_is_refused(self, value: float) -> None:
        with pytest.raises(ValueError):
            QuantileSketch().add(value)

    @pytest.mark.parametrize(
        "blob", [b"", b"\x01" * 39, b"\x02" + b"\x00" * 39, QuantileSketch().to_bytes() + b"x"]
    )
    def test_foreign_bytes_are_refused(self, blob: bytes) -> None:
        with pytest.raises(SketchFormatError):
            QuantileSketch.from_bytes(blob)
