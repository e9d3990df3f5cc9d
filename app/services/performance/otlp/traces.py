"""OTLP trace exports turned into the requests a watched service served.

Every span of kind SERVER is one request, named as :mod:`.attributes` says; its duration is
end - start, its trace id kept for the exemplar. Other span kinds are accepted and ignored.

Without a status code the span's own status decides: ERROR (the handler failed, e.g. an
exception escaped before a response) counts as 500, anything else as 200
(:func:`.attributes.resolve_status` says why).

Refused, and named in the reasons for OTLP's ``partial_success``: spans without a start
time, ending before they start or lasting over a day, a status code that is not an integer
in 100..599, and every span of a resource whose ``service.name`` is refused.

The loop over spans is the ingest hot path: a protobuf export is parsed with our own
reading schema (:mod:`.spans_read`: only the fields we read, attributes as a map), each span
is read with a handful of lookups, and nothing is allocated per span beyond the result.
An OTLP/JSON export is parsed into OTLP's message and re-read the same way, so both
encodings go through one reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.services.performance.otlp.attributes import (
    BAD_SERVICE_NAME,
    BAD_STATUS,
    HTTP_KEYS,
    Routes,
    read_http,
    resolve_status,
    service_name,
)
from app.services.performance.otlp.common import (
    PROTOBUF,
    Tally,
    hex_to_base64,
    media_type,
    members,
    parse_export,
    parse_protobuf,
)
from app.services.performance.otlp.spans_read import TraceExportRead

MAX_DURATION_NS: Final = 86_400 * 10**9
NO_START: Final = "no start time"
END_BEFORE_START: Final = "end before start"
TOO_LONG: Final = "longer than a day"

_SERVER: Final = Span.SpanKind.SPAN_KIND_SERVER
_ERROR: Final = Status.StatusCode.STATUS_CODE_ERROR
_ZERO_TRACE_ID: Final = bytes(16)


class ServedRequest(NamedTuple):
    """One request the watched service served, as its SERVER span tells it.

    A named tuple rather than a frozen dataclass: one is built per span, and a tuple is
    built in C.
    """

    service: str
    route: str | None  # None: the unmatched bucket
    method: str
    status_code: int
    duration_ms: float
    ended_at: float  # epoch seconds
    trace_id: str | None  # 32 hex digits


@dataclass(frozen=True, slots=True)
class TraceExport:
    """What one export held: the requests, and what was ignored or refused and why."""

    requests: tuple[ServedRequest, ...]
    ignored: int  # spans of other kinds, accepted
    rejected: int
    reasons: tuple[str, ...]

    @property
    def error_message(self) -> str:
        """The reasons as one line, for ``partial_success.error_message``."""
        return "; ".join(self.reasons)


def decode_traces(body: bytes, content_type: str | None) -> TraceExport:
    """The served requests in an OTLP trace export (protobuf or JSON, already inflated)."""
    if media_type(content_type) == PROTOBUF:
        export = parse_protobuf(body, TraceExportRead)
    else:
        otlp = parse_export(body, content_type, ExportTraceServiceRequest, _prepare_json)
        export = TraceExportRead.FromString(otlp.SerializeToString())
    requests: list[ServedRequest] = []
    ignored = 0
    tally = Tally("span")
    routes = Routes(tally)
    for resource_spans in export.resource_spans:
        service = service_name(resource_spans.resource.attributes.get)
        if service is None:
            tally.reject(BAD_SERVICE_NAME, sum(len(s.spans) for s in resource_spans.scope_spans))
            continue
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.kind != _SERVER:
                    ignored += 1
                    continue
                request = _served(span, service, routes, tally)
                if request is not None:
                    requests.append(request)
    return TraceExport(tuple(requests), ignored, tally.rejected, tally.reasons())


def _served(span: Any, service: str, routes: Routes, tally: Tally) -> ServedRequest | None:
    """The request a SERVER span records, or None (counted in ``tally``) when refused."""
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    if not start:
        tally.reject(NO_START)
        return None
    if end < start:
        tally.reject(END_BEFORE_START)
        return None
    if end - start > MAX_DURATION_NS:
        tally.reject(TOO_LONG)
        return None
    route, method, status, _ = read_http(span.attributes.get)
    status = resolve_status(status, span.status.code == _ERROR)
    if status is None:
        tally.reject(BAD_STATUS)
        return None
    trace_id = span.trace_id
    return ServedRequest(
        service,
        routes.clean(route),
        method,
        status,
        (end - start) / 1e6,
        end / 1e9,
        trace_id.hex() if len(trace_id) == 16 and trace_id != _ZERO_TRACE_ID else None,
    )


def _prepare_json(document: dict[str, Any]) -> None:
    """Rewrite an OTLP/JSON trace export for ``json_format``, keeping only what we read.

    Span ids become base64. Parsing JSON into messages runs in Python, so the attributes
    we do not read and the events and links are dropped first: that triples its speed.
    """
    for resource_spans in members(document, "resourceSpans", "resource_spans"):
        for scope_spans in members(resource_spans, "scopeSpans", "scope_spans"):
            for span in members(scope_spans, "spans", "spans"):
                if not isinstance(span, dict):
                    continue
                hex_to_base64(span, "traceId", "trace_id")
                hex_to_base64(span, "spanId", "span_id")
                hex_to_base64(span, "parentSpanId", "parent_span_id")
                for unread in ("events", "links"):
                    span.pop(unread, None)
                attributes = span.get("attributes")
                if isinstance(attributes, list):
                    span["attributes"] = [
                        attribute
                        for attribute in attributes
                        if isinstance(attribute, dict) and attribute.get("key") in HTTP_KEYS
                    ]
