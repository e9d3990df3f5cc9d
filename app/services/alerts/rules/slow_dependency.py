"""slow_dependency: a dependency whose checks answer, but every one of them slower than
``slow_latency_ms`` for ``slow_minutes`` (the host's own check is not a dependency)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from app.services.alerts.rules.base import RuleResult
from app.services.alerts.rules.context import RuleContext
from app.services.alerts.rules.own_network import judged_components
from app.services.alerts.rules.sustained import Reading, sustained_above
from app.vocabulary.alerts import AlertSeverity
from app.vocabulary.health import ComponentKind, ComponentStatus


class SlowDependency:
    name: Final = "slow_dependency"

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        rules = context.rules
        results = []
        for component in judged_components(context):
            if component.kind == ComponentKind.SYSTEM:
                continue
            # A failed check's latency is how long it took to fail, not how slow it is.
            readings = [
                Reading(row.checked_at, row.latency_ms)
                for row in await context.history(component.name)
                if row.latency_ms is not None and row.status is not ComponentStatus.UNHEALTHY
            ]
            verdict = sustained_above(
                f"{component.name} latency",
                readings,
                threshold=rules.slow_latency_ms,
                duration=timedelta(minutes=rules.slow_minutes),
                now=context.now,
                unit="ms",
                firing=context.is_firing(self.name, component.name),
            )
            results.append(RuleResult(self.name, component.name, AlertSeverity.WARNING, verdict))
        return results
