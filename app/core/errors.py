"""Our own errors, each carrying its HTTP status; one handler in ``app.main`` maps them.

Services raise these and never import FastAPI; routers never translate errors by hand.
"""

from __future__ import annotations

from typing import Any


class WatchkeeperError(Exception):
    """Base of every error a caller may see; ``detail`` is shown as is."""

    status_code = 400

    def __init__(self, detail: Any, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class NotAuthenticated(WatchkeeperError):
    """Missing, malformed, unknown, expired or revoked credentials; never says which."""

    status_code = 401

    def __init__(self, detail: str = "Not authenticated") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(WatchkeeperError):
    status_code = 403


class NotFound(WatchkeeperError):
    status_code = 404


class Conflict(WatchkeeperError):
    status_code = 409


class InvalidInput(WatchkeeperError):
    """A well-formed request that breaks a rule only the service can check."""

    status_code = 422


class TooManyRequests(WatchkeeperError):
    """The caller must wait ``retry_after`` seconds (sent as ``Retry-After``)."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(retry_after, 1))})
        self.retry_after = max(retry_after, 1)


class StoreUnavailable(WatchkeeperError):
    status_code = 503

    def __init__(self, detail: str = "The store is unavailable; try again shortly") -> None:
        super().__init__(detail)
