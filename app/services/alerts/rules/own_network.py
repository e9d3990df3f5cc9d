"""own_network: every one of several HTTP targets failing in the same sweep points at the
monitor's own network, so one alert about ourselves is raised instead of one per target.

While it fires, the per-component rules leave the HTTP targets alone
(:func:`judged_components`); that is why it is registered before them.
"""

from __future__ import annotations

from typing import Final

from app.schemas.alerts import AlertRules
from app.services.alerts.rules.base import HOLD, Decision, RuleResult, Verdict, is_failing
from app.services.alerts.rules.context import RuleContext
from app.vocabulary.alerts import AlertSeverity
from app.vocabulary.health import CheckResult, ComponentKind, ComponentStatus

MONITOR_COMPONENT = "watchkeeper"


def own_network(
    http_statuses: dict[str, ComponentStatus], *, firing: bool, rules: AlertRules
) -> Verdict:
    """All of several HTTP targets failing at once points at our own network."""
    if len(http_statuses) < rules.own_network_min_targets:
        return Verdict(Decision.CLEAR) if firing else HOLD
    down = sorted(name for name, status in http_statuses.items() if is_failing(status))
    figures = {"http_targets": len(http_statuses), "failing": down}
    if len(down) == len(http_statuses):
        if firing:
            return HOLD
        return Verdict(
            Decision.FIRE,
            f"all {len(down)} HTTP targets failed in the same sweep: the monitor's own "
            "network is suspected",
            figures,
        )
    if firing:
        return Verdict(
            Decision.CLEAR, f"{len(http_statuses) - len(down)} HTTP target(s) answer again", figures
        )
    return HOLD


class OwnNetwork:
    name: Final = "own_network"

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        http = {c.name: c.status for c in context.sweep.components if c.kind == ComponentKind.HTTP}
        verdict = own_network(
            http, firing=context.is_firing(self.name, MONITOR_COMPONENT), rules=context.rules
        )
        return [RuleResult(self.name, MONITOR_COMPONENT, AlertSeverity.CRITICAL, verdict)]


def judged_components(context: RuleContext) -> list[CheckResult]:
    """The sweep's components the per-component rules judge: all of them, but the HTTP
    targets while the monitor's own network is suspected."""
    network_down = context.is_firing(OwnNetwork.name, MONITOR_COMPONENT)
    return [
        c for c in context.sweep.components if not (network_down and c.kind == ComponentKind.HTTP)
    ]
