"""The alerting domain's words: rule names, states, severities, delivery states.

Rule names are plain strings checked against ``RuleName``: the API validates a rule it is
given against this list, and the rule registry (app/services/alerts/rules) refuses to load
unless its rules carry exactly these names, so the two cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, get_args

RuleName = Literal[
    "component_down",
    "flapping",
    "slow_dependency",
    "resource",
    "own_network",
    "endpoint_latency",
    "error_rate",
    "error_budget_burn",
]
RULE_NAMES: Final[tuple[RuleName, ...]] = get_args(RuleName)


def rule_name(value: str) -> RuleName:
    """``value`` as a rule name (e.g. read back from the store); ValueError if no rule has it."""
    for name in RULE_NAMES:
        if name == value:
            return name
    raise ValueError(f"no alert rule is named {value!r}; the rules are {', '.join(RULE_NAMES)}")


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
