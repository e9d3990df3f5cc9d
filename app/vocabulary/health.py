"""The health domain's words: component kinds and statuses, and one check's result.

A kind is a name of the checks' registry; ``ComponentKind`` names the built-in ones that
code compares against (the host, the store). Kinds travel and are stored as plain strings,
so adding one needs no change here.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict


class ComponentKind(StrEnum):
    """The kinds of check Watchkeeper is built with; the registry may hold more."""

    SYSTEM = "system"
    DATABASE = "database"
    MONGODB = "mongodb"
    REDIS = "redis"
    HTTP = "http"


class ComponentStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"

    @property
    def severity(self) -> int:
        """Rank for "worst of": a component we cannot vouch for is worse than a healthy one."""
        return _SEVERITY[self]


_SEVERITY = {
    ComponentStatus.HEALTHY: 0,
    ComponentStatus.UNKNOWN: 1,
    ComponentStatus.DEGRADED: 2,
    ComponentStatus.UNHEALTHY: 3,
}


def worst_status(statuses: Iterable[ComponentStatus]) -> ComponentStatus:
    """The most severe of ``statuses``; ``unknown`` when there is nothing to judge."""
    return max(statuses, key=lambda status: status.severity, default=ComponentStatus.UNKNOWN)


class CheckResult(BaseModel):
    """One component's state at one moment, as stored and as shown in ``components``."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str  # a name of the checks' registry: "system", "http", "tcp"...
    status: ComponentStatus
    latency_ms: float | None
    message: str
    details: dict[str, Any]  # JSON-ready values only; URLs in it are masked
    checked_at: AwareDatetime
