"""The quantiles health reports, as the trend reads them: hourly sketches of check
latencies merged by the server's reader. Whatever the values and however they are split
into hours, p50 <= p95 <= p99 <= max, and each is within the stated relative error of the
exact quantile (rank floor(q x (n - 1)) of the sorted values)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from app.vocabulary.sketch import RELATIVE_ACCURACY, QuantileSketch, from_many_bytes

# Check latencies in ms as the checks round them: 0.01 ms up to a 10 s timeout.
LATENCIES = st.lists(
    st.floats(min_value=0.01, max_value=10_000.0).map(lambda ms: round(ms, 2)),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(latencies=LATENCIES, hours=st.integers(min_value=1, max_value=12))
def test_merged_hourly_quantiles_are_ordered_and_within_the_bound(
    latencies: list[float], hours: int
) -> None:
    blobs = [
        QuantileSketch.of(latencies[hour::hours]).to_bytes()
        for hour in range(hours)
        if latencies[hour::hours]
    ]

    sketch = from_many_bytes(blobs)

    found = [*sketch.quantiles((0.5, 0.95, 0.99)), sketch.max]
    reported = [value for value in found if value is not None]
    assert len(reported) == len(found)
    assert reported == sorted(reported)
    ordered = sorted(latencies)
    for q, value in zip((0.5, 0.95, 0.99), reported, strict=False):
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        assert abs(value - exact) <= RELATIVE_ACCURACY * exact + 1e-9
    assert sketch.max == ordered[-1]
