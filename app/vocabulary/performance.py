"""The performance domain's words: the class of an HTTP status, the name of a service and
where a request's figures came from.

The status class, the request source and the unmatched route's name are the agent's
(``watchkeeper_agent.vocabulary``), re-exported: the agent ships them and the server
stores them, so there is one definition.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import StringConstraints
from watchkeeper_agent.vocabulary import (
    UNMATCHED_ROUTE,
    RequestSource,
    StatusClass,
    status_class,
)

__all__ = [
    "MAX_SERVICE_NAME",
    "SELF_SERVICE",
    "SERVICE_NAME_PATTERN",
    "UNMATCHED_ROUTE",
    "RequestSource",
    "ServiceName",
    "StatusClass",
    "is_service_name",
    "status_class",
]

# The service Watchkeeper's own requests are recorded as, unless configured otherwise.
SELF_SERVICE: Final = "watchkeeper"
MAX_SERVICE_NAME: Final = 128
# Printable text: a name shown in answers, alert text and metric labels carries no control
# characters (NUL, newlines, escapes).
SERVICE_NAME_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]+$"
_SERVICE_NAME: Final = re.compile(SERVICE_NAME_PATTERN)

# A service's name as settings and query parameters accept it.
ServiceName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SERVICE_NAME, pattern=SERVICE_NAME_PATTERN)
]


def is_service_name(name: str) -> bool:
    """Whether ``name`` may name a service: 1..128 characters, none of them a control."""
    return len(name) <= MAX_SERVICE_NAME and _SERVICE_NAME.fullmatch(name) is not None
