"""The alerting domain's words: rules, states, severities, delivery states."""

from __future__ import annotations

from enum import StrEnum


class AlertRule(StrEnum):
    COMPONENT_DOWN = "component_down"
    FLAPPING = "flapping"
    SLOW_DEPENDENCY = "slow_dependency"
    RESOURCE = "resource"
    OWN_NETWORK = "own_network"
    ENDPOINT_LATENCY = "endpoint_latency"
    ERROR_RATE = "error_rate"
    ERROR_BUDGET_BURN = "error_budget_burn"


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertSeverity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
