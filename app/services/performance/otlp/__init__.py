"""OTLP/HTTP payloads decoded into our performance vocabulary, before any storage.

``common`` holds the errors, :func:`inflate` and the parsing both encodings share;
``traces`` turns SERVER spans into :class:`ServedRequest`; ``metrics`` turns HTTP server
duration histograms into :class:`HistogramPoint`; ``sketches`` converts those histograms
into our :class:`~app.vocabulary.sketch.QuantileSketch` with an exact count. Then the
receiver: ``streams`` differences cumulative points against their stored stream state,
``routes`` bounds each service's routes and settles spans against metrics, ``responses``
encodes the answers, and ``receiver`` (:class:`OtlpReceiver`) runs an export through them
into the recorder.
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
from app.services.performance.otlp.receiver import IngestPaused, OtlpReceiver
from app.services.performance.otlp.responses import OtlpAnswer, otlp_failure_answer
from app.services.performance.otlp.sketches import explicit_to_sketch, exponential_to_sketch
from app.services.performance.otlp.traces import ServedRequest, TraceExport, decode_traces

__all__ = [
    "DecodeError",
    "HistogramPoint",
    "IngestPaused",
    "MetricsExport",
    "OtlpAnswer",
    "OtlpReceiver",
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
    "otlp_failure_answer",
]
