"""Reading the few OTLP attributes we use: service name, HTTP route, method and status.

Both decoders name a request the same way: the service from the resource's
``service.name``, the route from ``http.route`` only (never ``url.path`` or the raw URL,
so the number of series stays bounded), the method from ``http.request.method`` or the old
``http.method`` (unknown verbs fold into OTHER, as our own recorder folds them), the status
from ``http.response.status_code`` or the old ``http.status_code``.

Names that would corrupt our series are refused or set aside here: a ``service.name`` over
128 characters or with control characters is refused (changing it would invent a service
nobody runs; refusing tells the exporter's operator to fix it), a route over 256 characters
or with control characters is counted in the unmatched bucket with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final, Literal, Protocol

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from watchkeeper_agent.recorder import KNOWN_METHODS, OTHER_METHOD

from app.services.performance.otlp.common import Tally

# The OpenTelemetry resource specification's fallback when a service sets no name.
UNKNOWN_SERVICE: Final = "unknown_service"
MAX_SERVICE_NAME_LENGTH: Final = 128
# Route templates are short; a longer "route" is a URL with ids in it, or an attack.
MAX_ROUTE_LENGTH: Final = 256
BAD_SERVICE_NAME: Final = (
    f"service.name longer than {MAX_SERVICE_NAME_LENGTH} characters or with control characters"
)
BAD_STATUS: Final = "HTTP status code not an integer in 100..599"
BAD_ROUTE: Final = (
    f"http.route longer than {MAX_ROUTE_LENGTH} characters or with control characters,"
    " counted as unmatched"
)

_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SERVICE_NAME: Final = "service.name"
_ROUTE: Final = "http.route"
_METHOD: Final = "http.request.method"
_OLD_METHOD: Final = "http.method"
_STATUS: Final = "http.response.status_code"
_OLD_STATUS: Final = "http.status_code"
_ERROR_TYPE: Final = "error.type"
HTTP_KEYS: Final = frozenset((_ROUTE, _METHOD, _OLD_METHOD, _STATUS, _OLD_STATUS, _ERROR_TYPE))


class AttributeValue(Protocol):
    """What we read of an ``AnyValue``: OTLP's own, or the trace reader's (``spans_read``)."""

    @property
    def string_value(self) -> str: ...

    @property
    def int_value(self) -> int: ...

    def WhichOneof(self, oneof_group: Literal["value"], /) -> str | None: ...


AttributeLookup = Callable[[str], AttributeValue | None]


def service_name(get: AttributeLookup) -> str | None:
    """The resource's ``service.name`` (or the fallback); None when it must be refused."""
    value = get(SERVICE_NAME)
    if value is None:
        return UNKNOWN_SERVICE
    name: str = value.string_value
    if not name:
        return UNKNOWN_SERVICE
    if len(name) > MAX_SERVICE_NAME_LENGTH or _CONTROL_CHARACTERS.search(name):
        return None
    return name


def read_http(get: AttributeLookup) -> tuple[str, str, int | None, bool]:
    """Route ("" when absent), method, status (None when absent) and whether error.type is set.

    ``get`` looks an attribute up by key: this runs once per span on the ingest hot path,
    so only the keys we read are looked up. The stable attribute wins over the old one when
    both are present (instrumentations in "dup" mode send both); a status that is not an
    integer reads as 0, outside 100..599, so that the caller refuses it.
    """
    route = get(_ROUTE)
    method = get(_METHOD)
    if method is None:
        method = get(_OLD_METHOD)
    status = get(_STATUS)
    if status is None:
        status = get(_OLD_STATUS)
    verb = "" if method is None else method.string_value
    return (
        "" if route is None else route.string_value,
        verb if verb in KNOWN_METHODS else OTHER_METHOD,
        None if status is None else _status(status),
        get(_ERROR_TYPE) is not None,
    )


def lookup(attributes: Iterable[KeyValue]) -> AttributeLookup:
    """An attribute list's lookup by key, the last value winning as in a map."""
    values: dict[str, AttributeValue] = {attribute.key: attribute.value for attribute in attributes}
    return values.get


def resolve_status(status: int | None, failed: bool) -> int | None:
    """The status to count: 500 or 200 when absent, as ``failed`` says; None when refused.

    Without a status code, HTTP semantic conventions mean no response was sent; whether the
    request failed (a span status ERROR, an ``error.type``) decides between 500 and 200,
    since the conventions leave every response below 500 unmarked as a failure.
    """
    if status is None:
        return 500 if failed else 200
    return status if 100 <= status <= 599 else None


def _status(value: AttributeValue) -> int:
    """An HTTP status attribute's value, or 0 when it is not an integer."""
    if value.WhichOneof("value") == "int_value":
        return value.int_value
    text = value.string_value
    # Some older instrumentations send the status as a string; three digits at most.
    if len(text) == 3 and text.isascii() and text.isdigit():
        return int(text)
    return 0


class Routes:
    """Each distinct ``http.route`` of one export checked once; bad ones go unmatched."""

    __slots__ = ("_seen", "_tally")

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._seen: dict[str, str | None] = {}

    def clean(self, route: str) -> str | None:
        """The route when it can name a series, else None (the unmatched bucket)."""
        if not route:
            return None
        seen = self._seen
        if route in seen:
            kept = seen[route]
        else:
            too_long = len(route) > MAX_ROUTE_LENGTH
            kept = seen[route] = None if too_long or _CONTROL_CHARACTERS.search(route) else route
        if kept is None:
            self._tally.warn(BAD_ROUTE)
        return kept


def attribute_identity(attributes: Iterable[KeyValue]) -> bytes:
    """A canonical encoding of an attribute set: order does not matter, values do."""
    pairs = sorted((kv.key, kv.value.SerializeToString(deterministic=True)) for kv in attributes)
    return b"".join(
        len(key).to_bytes(4, "little") + key.encode() + len(value).to_bytes(4, "little") + value
        for key, value in pairs
    )
