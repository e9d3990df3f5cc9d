"""Who may call Watchkeeper: roles, and the kinds of bearer token."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    USER = "user"

    @property
    def is_staff(self) -> bool:
        """Admins and developers run the desk and the monitoring."""
        return self in (Role.ADMIN, Role.DEVELOPER)


class TokenKind(StrEnum):
    SESSION = "session"  # issued by POST /auth/token, short-lived
    API = "api"  # created by an admin or the CLI for scripts and probes
    INGEST = "ingest"  # for an exporter: may post telemetry to /v1/* and nothing else
    BROWSER = "browser"  # a signed-in browser's cookie: opens the pages, never the API
