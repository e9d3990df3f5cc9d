"""The receiver's answers, encoded as OTLP/HTTP says: like the request, protobuf or JSON.

A success is the signal's ``Export*ServiceResponse``, with ``partial_success`` set when
anything was refused (``rejected_*`` and the reasons) or when there is a warning to give
(``rejected_*`` 0, the message alone), as the specification allows. A failure is a
``google.rpc.Status`` (the package ``googleapis-common-protos``, which every OpenTelemetry
exporter installs); where it is absent, the API's own ``{"detail": ...}`` JSON instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from app.services.performance.otlp.common import JSON, PROTOBUF, UnsupportedMediaType, media_type

try:
    from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - an install without any OpenTelemetry exporter
    Status = None

# The gRPC code closest to each HTTP status, for Status.code (as the Collector maps them).
_GRPC_CODES: Final = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    503: 14,  # UNAVAILABLE
}
_UNKNOWN: Final = 2


@dataclass(frozen=True, slots=True)
class OtlpAnswer:
    """An encoded response body and its media type."""

    body: bytes
    media_type: str


def traces_answer(rejected: int, message: str, media: str) -> OtlpAnswer:
    """The ``ExportTraceServiceResponse`` for an accepted trace export."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    return _encoded(response, media)


def metrics_answer(rejected: int, message: str, media: str) -> OtlpAnswer:
    """The ``ExportMetricsServiceResponse`` for an accepted metric export."""
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(
            ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=message)
        )
    return _encoded(response, media)


def otlp_failure_answer(status_code: int, message: str, content_type: str | None) -> OtlpAnswer:
    """The body of an error response to a request of ``content_type``."""
    if Status is None:
        return OtlpAnswer(json.dumps({"detail": message}).encode(), JSON)
    status = Status(code=_GRPC_CODES.get(status_code, _UNKNOWN), message=message)
    try:
        media = media_type(content_type)
    except UnsupportedMediaType:
        media = JSON  # the request named no encoding we speak: answer in the readable one
    return _encoded(status, media)


def _encoded(message: Message, media: str) -> OtlpAnswer:
    if media == PROTOBUF:
        return OtlpAnswer(message.SerializeToString(), PROTOBUF)
    return OtlpAnswer(json_format.MessageToJson(message, indent=None).encode(), JSON)
