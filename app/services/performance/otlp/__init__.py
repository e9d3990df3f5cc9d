"""OTLP/HTTP payloads decoded into our performance vocabulary, before any storage.

``common`` holds the errors, :func:`inflate` and the parsing both encodings share;
``traces`` turns SERVER spans into :class:`ServedRequest`; ``metrics`` turns HTTP server
duration histograms into :class:`HistogramPoint`; ``sketches`` converts those histograms
into our :class:`~app.vocabulary.sketch.QuantileSketch` with an exact count.
"""

from app.services.performance.otlp.common import (
    DecodeError,
    PayloadTooLarge,
    UnsupportedMediaType,
    inflate,
)
from app.services.performance.otlp.metrics import (
    HistogramPoint,
    MetricsExport,
    Temporality,
    decode_metrics,
)
from app.services.performance.otlp.sketches import explicit_to_sketch, exponential_to_sketch
from app.services.performance.otlp.traces import ServedRequest, TraceExport, decode_traces

__all__ = [
    "DecodeError",
    "HistogramPoint",
    "MetricsExport",
    "PayloadTooLarge",
    "ServedRequest",
    "Temporality",
    "TraceExport",
    "UnsupportedMediaType",
    "decode_metrics",
    "decode_traces",
    "explicit_to_sketch",
    "exponential_to_sketch",
    "inflate",
]
