"""endpoint_latency and error_rate: an endpoint's (or a whole service's) p95 over
``p95_ms``, or its 5xx share over ``error_rate``, in the last ``performance_window_minutes``
and with at least ``min_requests``, so three slow requests at night page nobody.

Every service is judged on its own: an endpoint's alert is on ``shop GET /orders``, the
whole service's on ``shop *``. Both are one rule shape, a figure of the recent requests
against a limit, so they are two instances of :class:`RequestThreshold`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from app.schemas.alerts import AlertRules
from app.services.alerts.rules.base import HOLD, Decision, RuleResult, Verdict
from app.services.alerts.rules.context import RuleContext
from app.services.performance import RouteFigures
from app.vocabulary.alerts import AlertSeverity, RuleName

# Stands for every endpoint of a service, next to "GET /route" of one: "shop *".
ALL_ENDPOINTS = "*"
# An alert's key ("rule:component") is stored in 200 characters; a service name and a route
# may be longer together, so a longer component keeps its start and a digest of the whole.
MAX_COMPONENT: Final = 180
_DIGEST: Final = 12


def bounded(component: str) -> str:
    """``component``, or for a longer one its start and a digest that keeps it unique."""
    if len(component) <= MAX_COMPONENT:
        return component
    digest = hashlib.sha256(component.encode()).hexdigest()[:_DIGEST]
    return f"{component[: MAX_COMPONENT - _DIGEST - 1]}~{digest}"


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
    """A figure of each endpoint's recent requests, and of each service's, against a limit."""

    name: RuleName
    severity: AlertSeverity
    label: str
    unit: str
    figure: Callable[[RouteFigures], float | None]
    limit: Callable[[AlertRules], float]

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        recent = await context.recent_requests()
        # (component, how the message names it, its service, figures)
        named = [
            *(
                (f"{service} {ALL_ENDPOINTS}", f"every endpoint of {service}", service, figures)
                for service, figures in recent.services.items()
            ),
            *(
                (endpoint.name, endpoint.name, endpoint.service, figures)
                for endpoint, figures in recent.endpoints.items()
            ),
        ]
        rules = context.rules
        results = []
        for component, label, service, figures in named:
            key = bounded(component)
            verdict = above(
                f"{self.label} of {label}",
                self.figure(figures),
                self.limit(rules),
                enough=figures.requests >= rules.min_requests,
                firing=context.is_firing(self.name, key),
                unit=self.unit,
                figures={
                    "service": service,
                    "requests": figures.requests,
                    "window_minutes": rules.performance_window_minutes,
                },
            )
            results.append(RuleResult(self.name, key, self.severity, verdict))
        return results


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
