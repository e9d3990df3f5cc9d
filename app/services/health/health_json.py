"""The latest health in the IETF health-check response format (application/health+json),
so probes and tools that already read that draft can read Watchkeeper.

Beside the draft's fields, ``checkedAt`` and ``ageSeconds`` say when the sweep was taken;
a stale sweep (no monitor has swept for two intervals) is at best "warn", with an
``output`` saying so: a probe must not read an old "pass" as today's.
"""

from __future__ import annotations

from typing import Any

from app.schemas.health import LatestSweep, Sweep
from app.services.health.checks.registry import component_type
from app.vocabulary.health import ComponentKind, ComponentStatus, worst_status

HEALTH_JSON = "application/health+json"

_STATUS = {
    ComponentStatus.HEALTHY: "pass",
    ComponentStatus.DEGRADED: "warn",
    ComponentStatus.UNKNOWN: "warn",
    ComponentStatus.UNHEALTHY: "fail",
}
_SYSTEM_MEASUREMENTS = (
    ("cpu:utilization", "cpu_percent", "percent"),
    ("memory:utilization", "memory_percent", "percent"),
    ("disk:utilization", "disk_percent", "percent"),
    ("uptime", "uptime_s", "s"),
)


def health_json(sweep: LatestSweep, *, version: str) -> dict[str, Any]:
    """The sweep as ``{"status": pass|warn|fail, "checks": {"component:measurement": [...]}}``."""
    checks: dict[str, list[dict[str, Any]]] = {}
    time = sweep.checked_at.isoformat()
    for result in sweep.components:
        entry: dict[str, Any] = {
            "componentId": result.name,
            "componentType": component_type(result.kind),
            "observedValue": result.latency_ms,
            "observedUnit": "ms",
            "status": _STATUS[result.status],
            "time": result.checked_at.isoformat(),
        }
        if result.status is not ComponentStatus.HEALTHY:
            entry["output"] = result.message
        checks[f"{result.name}:responseTime"] = [entry]
    if sweep.system is not None:
        system = sweep.system.model_dump()
        for key, field, unit in _SYSTEM_MEASUREMENTS:
            checks[f"system:{key}"] = [
                {
                    "componentType": "system",
                    "observedValue": system[field],
                    "observedUnit": unit,
                    "status": _STATUS[_system_status(sweep)],
                    "time": time,
                }
            ]
    status = sweep.status
    body: dict[str, Any] = {"status": _STATUS[status]}
    if sweep.stale:
        status = worst_status([status, ComponentStatus.DEGRADED])
        body = {
            "status": _STATUS[status],
            "output": f"the latest sweep is {sweep.age_seconds:.0f} s old: no monitor has "
            "swept since",
        }
    return {
        **body,
        "version": version,
        "serviceId": "watchkeeper",
        "description": "Health of the service and its dependencies",
        "checkedAt": time,
        "ageSeconds": sweep.age_seconds,
        "checks": checks,
    }


def _system_status(sweep: Sweep) -> ComponentStatus:
    return next(
        (r.status for r in sweep.components if r.kind == ComponentKind.SYSTEM),
        ComponentStatus.UNKNOWN,
    )
