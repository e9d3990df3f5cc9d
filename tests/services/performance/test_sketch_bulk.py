"""Bulk encoding: numpy-built sketches decode to what adding the values one by one gives."""

from __future__ import annotations

import numpy as np
import pytest

from app.vocabulary.sketch import QuantileSketch, encode_groups


class TestEncodeGroups:
    def test_each_group_decodes_to_the_sketch_of_its_values(self) -> None:
        rng = np.random.default_rng(3)
        values = np.concatenate([rng.lognormal(3, 1.5, 5000), np.zeros(7), [1e-9, 70_000.0]])
        groups = rng.integers(0, 4, values.size)
        groups[-3:] = 2  # group 3 keeps values; group 4 is left empty

        blobs = encode_groups(values, groups, 5)

        for group, blob in enumerate(blobs):
            expected = QuantileSketch.of(values[groups == group].tolist())
            decoded = QuantileSketch.from_bytes(blob)
            assert dict(decoded.bins) == dict(expected.bins)
            assert (decoded.count, decoded.zero_count) == (expected.count, expected.zero_count)
            assert decoded.sum == pytest.approx(expected.sum)
            assert (decoded.min, decoded.max) == (expected.min, expected.max)

    def test_counts_beyond_one_record_are_split(self) -> None:
        values = np.full(200_000, 12.0)

        decoded = QuantileSketch.from_bytes(
            encode_groups(values, np.zeros(values.size, np.int64), 1)[0]
        )

        assert decoded.count == 200_000
        assert decoded.quantile(0.5) == pytest.approx(12.0, rel=0.005)
