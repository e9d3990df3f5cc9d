"""What every alert rule is: a registered ``name`` and an ``evaluate`` that judges one
sweep's context into typed results, one per alert the rule keeps (a component, an endpoint,
an error budget).

A rule's judgement of one alert is a ``Verdict``: fire, clear or hold, with the message and
the figures that explain it. The ``RuleResult`` says which alert it is about; the engine
moves that alert on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from app.vocabulary.alerts import AlertSeverity, RuleName
from app.vocabulary.health import ComponentStatus

if TYPE_CHECKING:
    from app.services.alerts.rules.context import RuleContext


class Decision(Enum):
    FIRE = "fire"
    CLEAR = "clear"
    HOLD = "hold"  # keep whatever state the alert is in


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


HOLD = Verdict(Decision.HOLD)


def is_failing(status: ComponentStatus) -> bool:
    """Down, for alerting: degraded or unknown alone do not page anyone."""
    return status is ComponentStatus.UNHEALTHY


def alert_key(rule: RuleName, component: str) -> str:
    """The identity of an alert: one rule on one component."""
    return f"{rule}:{component}"


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on one component, with the severity its alert is raised at."""

    rule: RuleName
    component: str
    severity: AlertSeverity
    verdict: Verdict
    opens_incident: bool = False  # raising it files an incident issue (a component down)

    @property
    def key(self) -> str:
        return alert_key(self.rule, self.component)


class Rule(Protocol):
    """An alert rule; register it in ``app.services.alerts.rules.RULES``."""

    @property
    def name(self) -> RuleName: ...

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        """This sweep's verdicts, one per alert the rule keeps."""
        ...
