"""What the rules judge a sweep by: the sweep and its moment, the settings, the store, and
the alerts firing as the evaluation goes.

Data that several rules read (each component's recent results, the recent request
figures) is loaded once per sweep, on first use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert, HealthResult
from app.schemas.alerts import AlertRules
from app.schemas.health import Sweep
from app.schemas.objectives import Objectives
from app.services.alerts.rules.base import alert_key
from app.services.performance import WindowFigures, window_figures
from app.vocabulary.alerts import RuleName


@dataclass
class RuleContext:
    """One sweep's evaluation, as every rule sees it."""

    session: AsyncSession
    sweep: Sweep
    rules: AlertRules
    objectives: Objectives
    interval_seconds: float
    # The engine's own map, so a rule sees what the rules before it raised or resolved.
    firing: Mapping[str, Alert]
    _history: dict[str, list[HealthResult]] | None = field(default=None, init=False)
    _requests: WindowFigures | None = field(default=None, init=False)

    @property
    def now(self) -> datetime:
        return self.sweep.checked_at

    def is_firing(self, rule: RuleName, component: str) -> bool:
        return alert_key(rule, component) in self.firing

    async def history(self, component: str) -> list[HealthResult]:
        """The component's last results, oldest first (this sweep's included): enough for
        the sweep-counting rules, and for the latency readings of a slow dependency."""
        if self._history is None:
            self._history = await self._load_history()
        return self._history.get(component, [])

    async def recent_requests(self) -> WindowFigures:
        """Request figures of the last ``performance_window_minutes``: per endpoint, per
        service and overall."""
        if self._requests is None:
            window = timedelta(minutes=self.rules.performance_window_minutes)
            self._requests = await window_figures(
                self.session,
                self.now - window,
                self.now,
                latency_ms=self.objectives.latency_ms,
            )
        return self._requests

    async def _load_history(self) -> dict[str, list[HealthResult]]:
        rules = self.rules
        depth = max(rules.fail_window, rules.fail_after, rules.clear_after, rules.flap_window)
        lookback = max(
            timedelta(seconds=self.interval_seconds * depth * 4),
            timedelta(minutes=rules.slow_minutes * 2),
            timedelta(hours=1),
        )
        rank = func.row_number().over(
            partition_by=HealthResult.component, order_by=HealthResult.checked_at.desc()
        )
        ranked = (
            select(HealthResult.id, rank.label("rank"))
            .where(HealthResult.checked_at >= self.now - lookback)
            .subquery()
        )
        rows = await self.session.scalars(
            select(HealthResult)
            .join(ranked, ranked.c.id == HealthResult.id)
            .where(ranked.c.rank <= max(depth, 50))
            .order_by(HealthResult.checked_at)
        )
        found: dict[str, list[HealthResult]] = defaultdict(list)
        for row in rows:
            found[row.component].append(row)
        return found
