"""The words the agent and the Watchkeeper server share about a request.

The class of an HTTP status, where a request's figures came from, and the one route name
that requests no route matched share. The server's vocabulary uses these same values: they
are stored, shipped in batches and shown in answers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# Every request that matched no route is counted under this one name, so scanners probing
# random paths cannot multiply the series.
UNMATCHED_ROUTE: Final = "<unmatched>"


class StatusClass(StrEnum):
    INFORMATIONAL = "1xx"
    SUCCESS = "2xx"
    REDIRECTION = "3xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"


class RequestSource(StrEnum):
    """How a service's requests reached Watchkeeper."""

    SELF = "self"  # Watchkeeper's own middleware
    OTLP_TRACES = "otlp-traces"  # SERVER spans posted to /v1/traces
    OTLP_METRICS = "otlp-metrics"  # request-duration histograms posted to /v1/metrics
    AGENT = "agent"  # watchkeeper-agent inside a user's Python app


# Indexed by ``status_code // 100 - 1``: a tuple lookup is the cheapest mapping.
_CLASS_BY_HUNDREDS: Final[tuple[StatusClass, ...]] = tuple(StatusClass)


def status_class(status_code: int) -> StatusClass:
    """The class of an HTTP status; anything outside 100..599 is a server error."""
    if 100 <= status_code <= 599:
        return _CLASS_BY_HUNDREDS[status_code // 100 - 1]
    return StatusClass.SERVER_ERROR
