"""Properties of the quantile sketch against numpy's exact percentiles.

"Exact" is numpy's ``method="lower"``: the value at rank ``floor(q * (n - 1))`` of the
sorted data, which is the rank the sketch answers for.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.vocabulary.sketch import (
    GAMMA,
    MIN_INDEXABLE_MS,
    RELATIVE_ACCURACY,
    QuantileSketch,
    SketchFormatError,
    from_many_bytes,
)

# Float rounding at a bucket boundary may overshoot the bound by a few ulps, no more.
BOUND = RELATIVE_ACCURACY * (1 + 1e-9)
QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)

durations = st.one_of(
    st.just(0.0),
    st.floats(min_value=MIN_INDEXABLE_MS, max_value=1e7, exclude_min=True),
)
samples = st.lists(durations, min_size=1, max_size=300)


def within_bound(estimate: float | None, exact: float) -> bool:
    return estimate is not None and abs(estimate - exact) <= BOUND * exact


def assert_same_counts(left: QuantileSketch, right: QuantileSketch) -> None:
    assert dict(left.bins) == dict(right.bins)
    assert left.zero_count == right.zero_count
    assert left.count == right.count
    assert (left.min, left.max) == (right.min, right.max)
    assert left.sum == pytest.approx(right.sum, rel=1e-12, abs=1e-12)


class TestQuantiles:
    @given(values=samples, extra=st.floats(min_value=0.0, max_value=1.0))
    def test_every_quantile_is_within_the_relative_accuracy(self, values, extra):
        sketch = QuantileSketch.of(values)
        for q in (*QUANTILES, extra):
            exact = float(np.quantile(values, q, method="lower"))
            assert within_bound(sketch.quantile(q), exact), (q, exact, sketch.quantile(q))

    @given(values=samples)
    def test_quantiles_answers_like_quantile(self, values):
        sketch = QuantileSketch.of(values)
        assert sketch.quantiles(QUANTILES) == [sketch.quantile(q) for q in QUANTILES]

    def test_extremes_count_and_sum_are_exact(self):
        values = [0.0, 3.5, 12.25, 900.0, 4000.125]
        sketch = QuantileSketch.of(values)
        assert (sketch.quantile(0), sketch.quantile(1)) == (0.0, 4000.125)
        assert (sketch.min, sketch.max, sketch.count, sketch.sum) == (0.0, 4000.125, 5, 4915.875)
        assert sketch.zero_count == 1

    def test_long_tailed_latencies_stay_within_one_percent(self):
        values = np.random.default_rng(7).lognormal(mean=4, sigma=1.3, size=50_000)
        sketch = QuantileSketch.of(values.tolist())
        for q in (0.5, 0.95, 0.99):
            exact = float(np.quantile(values, q, method="lower"))
            assert within_bound(sketch.quantile(q), exact)

    def test_an_empty_sketch_has_no_quantiles(self):
        sketch = QuantileSketch()
        assert sketch.quantiles((0.5, 0.99)) == [None, None]
        assert (sketch.min, sketch.max, sketch.count, sketch.fraction_at_most(1.0)) == (
            None,
            None,
            0,
            None,
        )

    @pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
    def test_a_quantile_outside_zero_to_one_is_refused(self, q):
        with pytest.raises(ValueError):
            QuantileSketch.of([1.0]).quantile(q)

    @pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, 1e13])
    def test_a_value_that_is_not_a_duration_is_refused(self, value):
        sketch = QuantileSketch()
        with pytest.raises(ValueError):
            sketch.add(value)
        assert sketch.count == 0


class TestFractionAtMost:
    @given(values=samples, threshold=st.floats(min_value=1e-3, max_value=1e7))
    def test_the_share_is_exact_to_the_width_of_one_bucket(self, values, threshold):
        share = QuantileSketch.of(values).fraction_at_most(threshold)
        data = np.asarray(values)
        assert np.mean(data <= threshold) <= share <= np.mean(data <= threshold * GAMMA)


class TestMerge:
    @given(left=samples, right=samples)
    def test_merging_equals_adding_everything_to_one_sketch(self, left, right):
        merged = QuantileSketch.of(left)
        merged.merge(QuantileSketch.of(right))
        assert_same_counts(merged, QuantileSketch.of(left + right))

    @given(parts=st.lists(st.lists(durations, max_size=40), min_size=1, max_size=12))
    def test_merging_serialised_sketches_at_once_equals_one_sketch(self, parts):
        blobs = [QuantileSketch.of(part).to_bytes() for part in parts]
        everything = [value for part in parts for value in part]
        assert_same_counts(from_many_bytes(blobs), QuantileSketch.of(everything))

    @given(left=samples, right=samples, limit=st.integers(min_value=1, max_value=40))
    def test_collapsing_does_not_depend_on_the_order_of_merges(self, left, right, limit):
        merged = QuantileSketch.of(left, bin_limit=limit)
        merged.merge(QuantileSketch.of(right, bin_limit=limit))
        assert_same_counts(merged, QuantileSketch.of(left + right, bin_limit=limit))

    def test_merging_an_empty_sketch_changes_nothing(self):
        sketch = QuantileSketch.of([2.0, 3.0])
        sketch.merge(QuantileSketch())
        assert_same_counts(sketch, QuantileSketch.of([2.0, 3.0]))


class TestSerialisation:
    @given(values=st.lists(durations, max_size=300))
    def test_bytes_round_trip_exactly(self, values):
        sketch = QuantileSketch.of(values)
        restored = QuantileSketch.from_bytes(sketch.to_bytes())
        assert_same_counts(restored, sketch)
        assert restored.sum == sketch.sum

    def test_counts_too_large_for_one_record_survive(self):
        sketch = QuantileSketch.of([5.0] * 70_000 + [9.0])
        restored = QuantileSketch.from_bytes(sketch.to_bytes())
        assert_same_counts(restored, sketch)

    def test_a_sketch_costs_four_bytes_per_non_empty_bucket(self):
        sketch = QuantileSketch.of([1.0, 1.0, 2.0, 50.0])
        assert len(sketch.to_bytes()) == 40 + 4 * 3

    @pytest.mark.parametrize(
        "blob", [b"", b"\x00" * 41, b"\x02" + b"\x00" * 39], ids=["empty", "ragged", "version"]
    )
    def test_foreign_bytes_are_refused(self, blob):
        with pytest.raises(SketchFormatError):
            QuantileSketch.from_bytes(blob)


class TestBucketBound:
    @given(
        values=st.lists(durations, min_size=1, max_size=300),
        limit=st.integers(min_value=1, max_value=64),
    )
    def test_the_span_of_buckets_never_exceeds_the_limit(self, values, limit):
        sketch = QuantileSketch.of(values, bin_limit=limit)
        for candidate in (sketch, QuantileSketch.from_bytes(sketch.to_bytes(), bin_limit=limit)):
            assert len(candidate.bins) <= limit
            if candidate.bins:
                assert max(candidate.bins) - min(candidate.bins) < limit
            assert candidate.count == len(values)
            assert candidate.quantile(1.0) == max(values)

    @settings(max_examples=25)
    @given(values=st.lists(st.floats(min_value=1.0, max_value=1e6), min_size=20, max_size=300))
    def test_only_the_fastest_values_lose_accuracy(self, values):
        sketch = QuantileSketch.of(values, bin_limit=100)
        # The 100 kept buckets reach down to about GAMMA**-99 times the maximum.
        kept_from = max(values) / GAMMA**98
        for q in QUANTILES:
            exact = float(np.quantile(values, q, method="lower"))
            if exact >= kept_from:
                assert within_bound(sketch.quantile(q), exact)
