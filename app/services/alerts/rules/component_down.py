"""component_down: a component fires after ``fail_after`` failing sweeps in a row or
``fail_threshold`` of the last ``fail_window``, and clears only after ``clear_after``
healthy ones in a row, so a flapping target raises one alert, not one per flip (flapping is
a rule of its own). Raising it opens an incident issue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from app.schemas.alerts import AlertRules
from app.services.alerts.rules.base import HOLD, Decision, RuleResult, Verdict, is_failing
from app.services.alerts.rules.context import RuleContext
from app.services.alerts.rules.own_network import judged_components
from app.vocabulary.alerts import AlertSeverity
from app.vocabulary.health import ComponentStatus


def component_down(
    name: str, statuses: Sequence[ComponentStatus], *, firing: bool, rules: AlertRules
) -> Verdict:
    """Fires on a run (or a majority) of failures; clears on a run of successes. Statuses
    arrive oldest first."""
    if not statuses:
        return HOLD
    recent = statuses[-rules.fail_window :]
    failures = sum(is_failing(s) for s in recent)
    run = _trailing(statuses, is_failing)
    figures = {"consecutive_failures": run, "failures": failures, "of_last": len(recent)}
    if not firing:
        if run >= rules.fail_after or failures >= rules.fail_threshold:
            return Verdict(
                Decision.FIRE,
                f"{name} is down: {run} failing sweep(s) in a row, {failures} of the last "
                f"{len(recent)}",
                figures,
            )
        return HOLD
    healthy_run = _trailing(statuses, lambda s: not is_failing(s))
    if healthy_run >= rules.clear_after:
        return Verdict(
            Decision.CLEAR,
            f"{name} recovered: {healthy_run} healthy sweep(s) in a row",
            {**figures, "consecutive_successes": healthy_run},
        )
    return HOLD


class ComponentDown:
    name: Final = "component_down"

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        results = []
        for component in judged_components(context):
            statuses = [row.status for row in await context.history(component.name)]
            firing = context.is_firing(self.name, component.name)
            verdict = component_down(component.name, statuses, firing=firing, rules=context.rules)
            results.append(
                RuleResult(
                    self.name, component.name, AlertSeverity.CRITICAL, verdict, opens_incident=True
                )
            )
        return results


def _trailing(
    statuses: Sequence[ComponentStatus], predicate: Callable[[ComponentStatus], bool]
) -> int:
    count = 0
    for status in reversed(statuses):
        if not predicate(status):
            break
        count += 1
    return count
