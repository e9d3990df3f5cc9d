"""flapping: a component whose up/down state flips ``flap_changes`` times within the last
``flap_window`` sweeps; it settles when the flips fall under half of that."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

from app.schemas.alerts import AlertRules
from app.services.alerts.rules.base import HOLD, Decision, RuleResult, Verdict, is_failing
from app.services.alerts.rules.context import RuleContext
from app.services.alerts.rules.own_network import judged_components
from app.vocabulary.alerts import AlertSeverity
from app.vocabulary.health import ComponentStatus


def flapping(
    name: str, statuses: Sequence[ComponentStatus], *, firing: bool, rules: AlertRules
) -> Verdict:
    """Fires when the up/down state flips ``flap_changes`` times within ``flap_window``."""
    recent = [is_failing(s) for s in statuses[-rules.flap_window :]]
    flips = sum(1 for a, b in itertools.pairwise(recent) if a != b)
    figures = {"flips": flips, "of_last": len(recent)}
    if flips >= rules.flap_changes and not firing:
        return Verdict(
            Decision.FIRE, f"{name} is flapping: {flips} flips in {len(recent)} sweeps", figures
        )
    if firing and flips < rules.flap_changes // 2:
        return Verdict(Decision.CLEAR, f"{name} settled: {flips} flips", figures)
    return HOLD


class Flapping:
    name: Final = "flapping"

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        results = []
        for component in judged_components(context):
            statuses = [row.status for row in await context.history(component.name)]
            firing = context.is_firing(self.name, component.name)
            verdict = flapping(component.name, statuses, firing=firing, rules=context.rules)
            results.append(RuleResult(self.name, component.name, AlertSeverity.WARNING, verdict))
        return results
