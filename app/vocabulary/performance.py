"""The performance domain's words: the class of an HTTP status."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class StatusClass(StrEnum):
    INFORMATIONAL = "1xx"
    SUCCESS = "2xx"
    REDIRECTION = "3xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"


# Indexed by ``status_code // 100 - 1``: a tuple lookup is the cheapest mapping.
_CLASS_BY_HUNDREDS: Final[tuple[StatusClass, ...]] = tuple(StatusClass)


def status_class(status_code: int) -> StatusClass:
    """The class of an HTTP status; anything outside 100..599 is a server error."""
    if 100 <= status_code <= 599:
        return _CLASS_BY_HUNDREDS[status_code // 100 - 1]
    return StatusClass.SERVER_ERROR
