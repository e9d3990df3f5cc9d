"""A trace export's served requests gathered into the recorder's buckets.

An export of 512 spans falls into a few dozen buckets (minute, service, route, method,
status). Counting it a bucket at a time, with the bucket arithmetic done in numpy over the
whole export, costs a fraction of recording each span on its own; what the recorder ends up
holding is the same: the same sketches, and the same slowest requests as exemplars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.services.performance.otlp.traces import ServedRequest
from app.vocabulary.sketch import QuantileSketch, sketch_groups

# (duration in milliseconds, trace id, epoch seconds), as the recorder takes exemplars.
Exemplar = tuple[float, str | None, float]


@dataclass(frozen=True, slots=True)
class SpanBucket:
    """The requests of one minute of one service's route, method and status."""

    minute: int  # since the epoch
    service: str
    route: str | None  # None: the unmatched bucket
    method: str
    status_code: int
    sketch: QuantileSketch
    slowest: tuple[Exemplar, ...]  # slowest first


def bucketed(requests: Sequence[ServedRequest], exemplars: int) -> list[SpanBucket]:
    """``requests`` gathered into buckets, each with its ``exemplars`` slowest requests."""
    if not requests:
        return []
    keys: dict[tuple[int, str, str | None, str, int], int] = {}
    owners = np.fromiter(
        (
            keys.setdefault(
                (int(r.ended_at // 60), r.service, r.route, r.method, r.status_code), len(keys)
            )
            for r in requests
        ),
        dtype=np.int64,
        count=len(requests),
    )
    durations = np.fromiter(
        (r.duration_ms for r in requests), dtype=np.float64, count=len(requests)
    )
    sketches = sketch_groups(durations, owners, len(keys))
    # Each bucket's requests, slowest first, as one ordering of the whole export.
    order = np.lexsort((-durations, owners))
    starts = np.searchsorted(owners[order], np.arange(len(keys) + 1)).tolist()
    ordered = order.tolist()
    buckets = []
    for (minute, service, route, method, status), number in keys.items():
        first = starts[number]
        picked = ordered[first : min(first + exemplars, starts[number + 1])]
        buckets.append(
            SpanBucket(
                minute,
                service,
                route,
                method,
                status,
                sketches[number],
                tuple(
                    (requests[i].duration_ms, requests[i].trace_id, requests[i].ended_at)
                    for i in picked
                ),
            )
        )
    return buckets
