"""endpoint_latency and error_rate: an endpoint's (or the whole service's) p95 over
``p95_ms``, or its 5xx share over ``error_rate``, in the last ``performance_window_minutes``
and with at least ``min_requests``, so three slow requests at night page nobody.

Both are one rule shape, a figure of the recent requests against a limit, so they are two
instances of :class:`RequestThreshold`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.schemas.alerts import AlertRules
from app.services.alerts.rules.base import HOLD, Decision, RuleResult, Verdict
from app.services.alerts.rules.context import RuleContext
from app.services.performance import RouteFigures
from app.vocabulary.alerts import AlertSeverity, RuleName

# The component name of the whole service's figures, next to "GET /route" of one endpoint.
ALL_ENDPOINTS = "*"


def above(
    label: str,
    value: float | None,
    limit: float,
    *,
    enough: bool,
    firing: bool,
    unit: str,
    figures: dict[str, Any],
) -> Verdict:
    """Fires when a window's figure is over its limit with enough data; clears under it."""
    if value is None or not enough:
        return HOLD
    shown = {**figures, "value": round(value, 4), "threshold": limit, "unit": unit}
    if value > limit and not firing:
        return Verdict(
            Decision.FIRE, f"{label} is {value:.3g} {unit}, over {limit:g} {unit}", shown
        )
    if value <= limit and firing:
        return Verdict(Decision.CLEAR, f"{label} back to {value:.3g} {unit}", shown)
    return HOLD


@dataclass(frozen=True)
class RequestThreshold:
    """A figure of each endpoint's recent requests, and of all of them, against a limit."""

    name: RuleName
    severity: AlertSeverity
    label: str
    unit: str
    figure: Callable[[RouteFigures], float | None]
    limit: Callable[[AlertRules], float]

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        recent = await context.recent_requests()
        named = [
            (ALL_ENDPOINTS, recent.overall),
            *(
                (f"{method} {route}", figures)
                for (method, route), figures in recent.endpoints.items()
            ),
        ]
        rules = context.rules
        return [
            RuleResult(
                self.name,
                endpoint,
                self.severity,
                above(
                    f"{self.label} of {endpoint}",
                    self.figure(figures),
                    self.limit(rules),
                    enough=figures.requests >= rules.min_requests,
                    firing=context.is_firing(self.name, endpoint),
                    unit=self.unit,
                    figures={
                        "requests": figures.requests,
                        "window_minutes": rules.performance_window_minutes,
                    },
                ),
            )
            for endpoint, figures in named
        ]


ENDPOINT_LATENCY = RequestThreshold(
    name="endpoint_latency",
    severity=AlertSeverity.WARNING,
    label="p95",
    unit="ms",
    figure=lambda figures: figures.p95_ms,
    limit=lambda rules: rules.p95_ms,
)
ERROR_RATE = RequestThreshold(
    name="error_rate",
    severity=AlertSeverity.CRITICAL,
    label="5xx share",
    unit="of requests",
    figure=lambda figures: figures.error_rate,
    limit=lambda rules: rules.error_rate,
)
