"""What the OTLP trace and metric decoders share: errors, body handling, refusal reasons.

The receiver hands :func:`inflate` the raw body and its ``Content-Encoding``, then a decoder
(``traces`` or ``metrics``) the result and its ``Content-Type``; :func:`parse_export` turns
either OTLP encoding into the generated protobuf message, so each decoder reads one form.

OTLP/JSON differs from protobuf's canonical JSON in one way that matters here: trace and
span ids are hex strings, not base64. Each decoder rewrites them (:func:`hex_to_base64`)
before :func:`parse_export` hands the dict to ``json_format``. Unknown fields are ignored,
as the specification requires of receivers (so a newer exporter's fields do not break us);
a non-empty body that carries none of the export's one top-level field is still refused, so
``{"foo": 1}`` is not an empty export.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from app.core.errors import WatchkeeperError

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
# The reasons are fixed phrases, so this only guards against a future unbounded one.
MAX_REASONS: Final = 8

# zlib's window bits for each encoding: 16 + the window reads the gzip wrapper.
_WINDOWS: Final = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


class DecodeError(WatchkeeperError):
    """The body is not an OTLP export in the encoding its content type names."""

    status_code = 400


class UnsupportedMediaType(WatchkeeperError):
    """A content type or content encoding that OTLP/HTTP does not define."""

    status_code = 415


class PayloadTooLarge(WatchkeeperError):
    """The body, once decompressed, is over the limit."""

    status_code = 413


def inflate(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body without its ``Content-Encoding``, refused over ``max_bytes``.

    OTLP/HTTP defines gzip; deflate (the zlib format, as HTTP names it) is accepted too,
    since the OpenTelemetry SDKs offer it as ``OTEL_EXPORTER_OTLP_COMPRESSION=deflate``.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", "none", ""):
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes")
        return body
    window = _WINDOWS.get(encoding)
    if window is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or no encoding"
        )
    pieces: list[bytes] = []
    size = 0
    remaining = body
    # A gzip stream may hold several members; each is inflated under what is left of the cap.
    while remaining:
        inflater = zlib.decompressobj(window)
        try:
            piece = inflater.decompress(remaining, max_bytes - size + 1)
        except zlib.error as error:
            raise DecodeError(f"The body is not valid {encoding}: {error}") from None
        size += len(piece)
        if size > max_bytes:
            raise PayloadTooLarge(f"The body inflates to more than {max_bytes} bytes")
        if not inflater.eof:
            raise DecodeError(f"The {encoding} body is truncated")
        pieces.append(piece)
        remaining = inflater.unused_data
    return b"".join(pieces)


def media_type(content_type: str | None) -> str:
    """The OTLP encoding a ``Content-Type`` names, or :class:`UnsupportedMediaType`."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    if essence not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; send {PROTOBUF} or {JSON}"
        )
    return essence


MessageT = TypeVar("MessageT", bound=Message)


def parse_export(
    body: bytes,
    content_type: str | None,
    message_type: type[MessageT],
    prepare_json: Callable[[dict[str, Any]], None],
) -> MessageT:
    """The export ``message_type`` held in ``body``.

    ``prepare_json`` rewrites a JSON document in place for ``json_format``: the hex ids to
    base64 at least (see :func:`hex_to_base64`).
    """
    if media_type(content_type) == PROTOBUF:
        return parse_protobuf(body, message_type)
    return _parse_json(body, message_type, prepare_json)


def parse_protobuf(body: bytes, message_type: type[MessageT]) -> MessageT:
    """The export ``message_type`` (OTLP's, or a schema wire-compatible with it) in ``body``."""
    descriptor = message_type.DESCRIPTOR
    (field,) = descriptor.fields  # every Export*ServiceRequest has its one repeated field
    try:
        message = message_type.FromString(body)
    except (ProtobufDecodeError, RecursionError):
        raise DecodeError(f"The body is not a protobuf {descriptor.name}") from None
    if body and not len(getattr(message, field.name)):
        # Only unknown fields: bytes that happen to parse, not an export.
        raise DecodeError(f"The body carries no {field.json_name}; not an OTLP export")
    return message


def _parse_json(
    body: bytes, message_type: type[MessageT], prepare_json: Callable[[dict[str, Any]], None]
) -> MessageT:
    descriptor = message_type.DESCRIPTOR
    (field,) = descriptor.fields
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise DecodeError("The body is not valid JSON") from None
    if not isinstance(document, dict):
        raise DecodeError(f"The JSON body must be an object with {field.json_name}")
    if document and field.json_name not in document and field.name not in document:
        raise DecodeError(f"The JSON body has no {field.json_name}; not an OTLP export")
    try:
        prepare_json(document)
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        raise DecodeError(f"The JSON body is not an OTLP {descriptor.name}: {e}") from None


def members(container: Any, json_name: str, name: str) -> Iterable[Any]:
    """The JSON list under either spelling of a field, or nothing when absent or malformed.

    Malformed shapes are skipped here and reported by ``json_format`` with a clear message.
    """
    if isinstance(container, dict):
        value = container.get(json_name, container.get(name))
        if isinstance(value, list):
            return value
    return ()


def hex_to_base64(container: Any, json_name: str, name: str) -> None:
    """Rewrite an OTLP/JSON hex id field in place to the base64 that ``json_format`` reads."""
    if not isinstance(container, dict):
        return
    for key in (json_name, name):
        value = container.get(key)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise DecodeError(f"{json_name} {value[:40]!r} is not a hex string") from None
            container[key] = base64.b64encode(raw).decode("ascii")


class Tally:
    """Counts of rejections and warnings by reason, rendered for ``partial_success``."""

    __slots__ = ("_counts", "_noun", "rejected")

    def __init__(self, noun: str) -> None:
        self._noun = noun
        self._counts: dict[str, int] = {}
        self.rejected = 0

    def reject(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items refused for ``reason``."""
        self.rejected += count
        self.warn(reason, count)

    def warn(self, reason: str, count: int = 1) -> None:
        """Note ``count`` items accepted with a change the sender should hear about."""
        counts = self._counts
        if reason in counts:
            counts[reason] += count
        elif len(counts) < MAX_REASONS:
            counts[reason] = count

    def reasons(self) -> tuple[str, ...]:
        """One short message per reason, most frequent first."""
        ranked = sorted(self._counts.items(), key=lambda item: -item[1])
        return tuple(
            f"{count} {self._noun}{'' if count == 1 else 's'}: {reason}" for reason, count in ranked
        )
