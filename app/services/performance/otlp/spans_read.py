"""The parts of an OTLP trace export we read, as a protobuf schema of our own.

Parsing an export with the full generated ``ExportTraceServiceRequest`` builds every field
of every span, and reading a span's attributes then means one Python object per attribute:
at twenty attributes a span that was two thirds of the ingest path's CPU. This schema is
wire-compatible with ``opentelemetry/proto/trace/v1/trace.proto`` for the fields we read
and leaves the others unparsed (protobuf keeps unknown fields as bytes), with two changes
that let the C parser do the work:

* ``attributes`` (``repeated KeyValue``, key 1 and value 2) is read as a
  ``map<string, AnyValue>``: a map entry has exactly that encoding, and a map answers
  ``get("http.route")`` in C. OTLP requires attribute keys to be unique; a duplicate key
  keeps its last value, as reading the list in order did.
* ``AnyValue``'s array, key-value list and bytes values are kept as bytes: we never read
  them, so deeply nested values are neither walked nor able to exhaust the recursion limit.

The field numbers are OTLP's (stable since 1.0); ``tests/services/performance/
test_otlp_traces.py`` decodes exports made by the OpenTelemetry SDK's own encoder, so a
mismatch would show there.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto
_OPTIONAL: Final = _FIELD.LABEL_OPTIONAL
_REPEATED: Final = _FIELD.LABEL_REPEATED
_PACKAGE: Final = "watchkeeper.otlp_read"


def _schema() -> descriptor_pb2.FileDescriptorProto:
    schema = descriptor_pb2.FileDescriptorProto(
        name="watchkeeper/otlp_read.proto", package=_PACKAGE, syntax="proto3"
    )

    def message(
        name: str,
        fields: list[tuple[str, int, int, int, str | None]],
        *,
        inside: descriptor_pb2.DescriptorProto | None = None,
        one_of: str | None = None,
    ) -> descriptor_pb2.DescriptorProto:
        described = (
            inside.nested_type.add(name=name) if inside else schema.message_type.add(name=name)
        )
        if one_of:
            described.oneof_decl.add(name=one_of)
        for field_name, number, kind, label, type_name in fields:
            field = described.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if one_of:
                field.oneof_index = 0
        return described

    message(
        "AnyValue",
        [
            ("string_value", 1, _FIELD.TYPE_STRING, _OPTIONAL, None),
            ("bool_value", 2, _FIELD.TYPE_BOOL, _OPTIONAL, None),
            ("int_value", 3, _FIELD.TYPE_INT64, _OPTIONAL, None),
            ("double_value", 4, _FIELD.TYPE_DOUBLE, _OPTIONAL, None),
            ("array_value", 5, _FIELD.TYPE_BYTES, _OPTIONAL, None),
            ("kvlist_value", 6, _FIELD.TYPE_BYTES, _OPTIONAL, None),
            ("bytes_value", 7, _FIELD.TYPE_BYTES, _OPTIONAL, None),
        ],
        one_of="value",
    )
    for owner, number in (("Resource", 1), ("Span", 9)):
        described = message(
            owner,
            [("attributes", number, _FIELD.TYPE_MESSAGE, _REPEATED, f"{owner}.AttributesEntry")],
        )
        entry = message(
            "AttributesEntry",
            [
                ("key", 1, _FIELD.TYPE_STRING, _OPTIONAL, None),
                ("value", 2, _FIELD.TYPE_MESSAGE, _OPTIONAL, "AnyValue"),
            ],
            inside=described,
        )
        entry.options.map_entry = True
    span = schema.message_type[-1]
    for field_name, number, kind, type_name in (
        ("trace_id", 1, _FIELD.TYPE_BYTES, None),
        ("kind", 6, _FIELD.TYPE_INT32, None),
        ("start_time_unix_nano", 7, _FIELD.TYPE_FIXED64, None),
        ("end_time_unix_nano", 8, _FIELD.TYPE_FIXED64, None),
        ("status", 15, _FIELD.TYPE_MESSAGE, "Status"),
    ):
        field = span.field.add(name=field_name, number=number, type=kind, label=_OPTIONAL)
        if type_name:
            field.type_name = f".{_PACKAGE}.{type_name}"
    message("Status", [("code", 3, _FIELD.TYPE_INT32, _OPTIONAL, None)])
    message("ScopeSpans", [("spans", 2, _FIELD.TYPE_MESSAGE, _REPEATED, "Span")])
    message(
        "ResourceSpans",
        [
            ("resource", 1, _FIELD.TYPE_MESSAGE, _OPTIONAL, "Resource"),
            ("scope_spans", 2, _FIELD.TYPE_MESSAGE, _REPEATED, "ScopeSpans"),
        ],
    )
    message(
        "ExportTraceServiceRequest",
        [("resource_spans", 1, _FIELD.TYPE_MESSAGE, _REPEATED, "ResourceSpans")],
    )
    return schema


_POOL: Final = descriptor_pool.DescriptorPool()
_POOL.Add(_schema())

# The generated class has no static type; its fields read as in the module docstring.
TraceExportRead: Final[Any] = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.ExportTraceServiceRequest")
)
