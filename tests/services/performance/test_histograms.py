"""The numpy histograms the analysis reads stored sketches into answer exactly as the
sketch itself would: the same quantiles and shares, after merging groups of serialised
sketches at once, merging histograms, and collapsing past the bin limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.vocabulary.histograms import (
    EMPTY,
    Histogram,
    decode_groups,
    merge,
)
from app.vocabulary.sketch import (
    MIN_INDEXABLE_MS,
    QuantileSketch,
    SketchFormatError,
    from_many_bytes,
)

QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
THRESHOLDS = (0.0, MIN_INDEXABLE_MS / 2, 0.5, 3.0, 40.0, 900.0, 2e5)

durations = st.one_of(
    st.just(0.0),
    st.floats(min_value=MIN_INDEXABLE_MS, max_value=1e7, exclude_min=True),
)
# A group: the sketches of one endpoint over a window, each of a few requests.
groups = st.lists(st.lists(durations, min_size=1, max_size=30), min_size=1, max_size=6)
limits = st.sampled_from([4096, 40, 3, 1])


def decoded(sketch_groups: list[list[bytes]], limit: int) -> list[Histogram]:
    """Each group as the store hands it over: headers joined, records joined."""
    return decode_groups(
        [b"".join(blob[:40] for blob in group) for group in sketch_groups],
        [b"".join(blob[40:] for blob in group) for group in sketch_groups],
        limit,
    )


def assert_answers_alike(histogram: Histogram, sketch: QuantileSketch) -> None:
    assert histogram.count == sketch.count
    assert histogram.quantiles(QUANTILES) == sketch.quantiles(QUANTILES)
    for threshold in THRESHOLDS:
        assert histogram.fraction_at_most(threshold) == sketch.fraction_at_most(threshold)


class TestDecodingGroups:
    @given(parts=st.lists(groups, min_size=1, max_size=4), limit=limits)
    def test_each_group_answers_as_its_sketches_merged(self, parts, limit):
        blobs = [[QuantileSketch.of(values, limit).to_bytes() for values in g] for g in parts]

        for histogram, group in zip(decoded(blobs, limit), blobs, strict=True):
            assert_answers_alike(histogram, from_many_bytes(group, limit))

    def test_counts_split_over_several_records_add_up(self):
        blob = QuantileSketch.of([5.0] * 70_000 + [9.0]).to_bytes()

        (histogram,) = decoded([[blob, blob]], 4096)

        assert histogram.count == 140_002
        assert histogram.quantile(0.5) == QuantileSketch.from_bytes(blob).quantile(0.5)

    @pytest.mark.parametrize(
        ("headers", "records"),
        [
            (b"\x00" * 39, b""),
            (QuantileSketch.of([1.0]).to_bytes()[:40], b"\x00" * 3),
            (b"\x02" + b"\x00" * 39, b""),
        ],
        ids=["short header", "ragged records", "version"],
    )
    def test_foreign_bytes_are_refused(self, headers, records):
        with pytest.raises(SketchFormatError):
            decode_groups([headers], [records])


class TestMerging:
    @given(parts=st.lists(groups, min_size=1, max_size=5), limit=limits)
    def test_merged_histograms_answer_as_one_sketch_of_everything(self, parts, limit):
        blobs = [[QuantileSketch.of(values, limit).to_bytes() for values in g] for g in parts]
        everything = QuantileSketch(limit)
        for group in blobs:
            everything.merge(from_many_bytes(group, limit))

        assert_answers_alike(merge(decoded(blobs, limit), limit), everything)

    def test_nothing_merged_is_empty(self):
        assert merge([EMPTY, EMPTY]).count == 0
        assert merge([]).quantiles((0.5,)) == [None]
        assert EMPTY.fraction_at_most(10.0) is None
