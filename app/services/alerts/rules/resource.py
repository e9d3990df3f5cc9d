"""resource: the host's CPU, memory or disk use held over its threshold for
``resource_minutes``, read from the stored sweeps; one alert per resource."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from sqlalchemy import select

from app.db.models import HealthSweep
from app.services.alerts.rules.base import RuleResult
from app.services.alerts.rules.context import RuleContext
from app.services.alerts.rules.sustained import Reading, sustained_above
from app.vocabulary.alerts import AlertSeverity

# (resource, the sweep column and the AlertRules threshold of the same name)
RESOURCES: Final = (("cpu", "cpu_percent"), ("memory", "memory_percent"), ("disk", "disk_percent"))


class Resource:
    name: Final = "resource"

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        window = timedelta(minutes=context.rules.resource_minutes)
        sweeps = list(
            await context.session.scalars(
                select(HealthSweep)
                .where(
                    HealthSweep.started_at >= context.now - window * 2,
                    HealthSweep.cpu_percent.is_not(None),
                )
                .order_by(HealthSweep.started_at)
            )
        )
        results = []
        for resource, column in RESOURCES:
            component = f"system:{resource}"
            verdict = sustained_above(
                f"{resource} use",
                [Reading(s.started_at, getattr(s, column)) for s in sweeps],
                threshold=getattr(context.rules, column),
                duration=window,
                now=context.now,
                unit="%",
                firing=context.is_firing(self.name, component),
            )
            results.append(RuleResult(self.name, component, AlertSeverity.WARNING, verdict))
        return results
