"""The MongoDB check: ``ping`` round trip, replication role from ``hello``, and from
``serverStatus`` connections in use against the limit and the operation counters.

``serverStatus`` needs the clusterMonitor role; without it the check still rates the
server by its ping and says what it could not read, rather than calling a live server down.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError, ServerSelectionTimeoutError

from app.schemas.targets import NetworkTarget, PercentThresholds, require_scheme
from app.services.health.checks.base import (
    CheckKind,
    Finding,
    Gauge,
    one_line,
    percent_of,
    rate_gauges,
    timed,
)
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentKind, ComponentStatus, worst_status

# pymongo keeps retrying an unreachable server until server selection gives up; ending
# that before the runner's hard stop lets its reason ("Connection refused") show.
_SELECTION_MARGIN_S = 0.5
# Sections of serverStatus that are large and that this check does not read.
_SKIPPED_SECTIONS = {"metrics": 0, "wiredTiger": 0, "tcmalloc": 0, "locks": 0}


class MongoTarget(NetworkTarget, PercentThresholds):
    """A MongoDB server or replica set; thresholds rate connections against the limit."""

    kind: Literal[ComponentKind.MONGODB] = ComponentKind.MONGODB

    @field_validator("url")
    @classmethod
    def _mongo_scheme(cls, url: str) -> str:
        return require_scheme(url, ("mongodb", "mongodb+srv"))


def _selection_reason(exc: ServerSelectionTimeoutError) -> str:
    # pymongo appends its timeouts and the whole topology; the reason comes first.
    return str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]


def replication_role(hello: dict[str, Any]) -> str:
    """primary, secondary, arbiter, mongos, standalone, or other (recovering, startup...)."""
    if hello.get("msg") == "isdbgrid":
        return "mongos"
    if "setName" not in hello:
        return "standalone"
    if hello.get("isWritablePrimary") or hello.get("ismaster"):
        return "primary"
    if hello.get("secondary"):
        return "secondary"
    if hello.get("arbiterOnly"):
        return "arbiter"
    return "other"


async def _server_status(client: AsyncMongoClient[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return await client.admin.command({"serverStatus": 1, **_SKIPPED_SECTIONS})
    except OperationFailure:
        return None  # not authorised to read it; the ping already proved the server up


def _figures(hello: dict[str, Any], server_status: dict[str, Any] | None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "role": replication_role(hello),
        "set_name": hello.get("setName"),
        "max_wire_version": hello.get("maxWireVersion"),
    }
    if server_status is None:
        figures["server_status"] = "not authorised (needs the clusterMonitor role)"
        return figures
    connections = server_status.get("connections", {})
    current = int(connections.get("current", 0))
    available = int(connections.get("available", 0))
    figures |= {
        "version": server_status.get("version"),
        "uptime_s": server_status.get("uptime"),
        "connections_current": current,
        "connections_available": available,
        "connections_percent": percent_of(current, current + available),
        "opcounters": {
            name: int(count) for name, count in server_status.get("opcounters", {}).items()
        },
    }
    return figures


def judge_mongodb(target: MongoTarget, latency_ms: float, figures: dict[str, Any]) -> Finding:
    """Rate connection use; a replica member that is neither primary nor secondary degrades."""
    gauges = []
    if "connections_percent" in figures:
        gauges.append(Gauge("connections", figures["connections_percent"]))
    status, summary = rate_gauges(gauges, target)
    parts = [f"ping in {latency_ms:.1f} ms", f"role {figures['role']}"]
    if summary:
        parts.append(summary)
    if figures["role"] == "other":
        parts.append("replica set member is neither primary nor secondary")
        status = worst_status([status, ComponentStatus.DEGRADED])
    return Finding(status, latency_ms, one_line("; ".join(parts)), figures)


async def probe(target: MongoTarget, context: CheckContext) -> Finding:
    """Ping the server, ask for its role and status, and rate connection use."""
    budget_s = max(target.timeout_s - _SELECTION_MARGIN_S, target.timeout_s / 2)
    budget_ms = int(budget_s * 1000)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        target.url,
        serverSelectionTimeoutMS=budget_ms,
        connectTimeoutMS=budget_ms,
        socketTimeoutMS=budget_ms,
        appname="watchkeeper",
    )
    try:
        # hello first: it waits for server selection and a connection, so the timed ping
        # that follows measures the round trip alone.
        hello, connect_ms = await timed(client.admin.command("hello"))
        _, latency_ms = await timed(client.admin.command("ping"))
        server_status = await _server_status(client)
    except ServerSelectionTimeoutError as exc:
        raise ServerSelectionTimeoutError(_selection_reason(exc)) from exc
    finally:
        await client.close()
    figures = {"connect_ms": connect_ms, **_figures(hello, server_status)}
    return judge_mongodb(target, latency_ms, figures)


KIND = CheckKind(
    target=MongoTarget,
    probe=probe,
    failures=(PyMongoError, OSError),
    component_type="datastore",
)
