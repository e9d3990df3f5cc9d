"""error_budget_burn: the error budgets of the objectives (``settings.objectives``) burning
too fast, as the SRE workbook's multi-window, multi-burn-rate alerts: both the long and the
short window of a ``burn_windows`` pair must burn at least its rate.

- Availability: the share of sweeps whose overall status was unhealthy, against a budget of
  ``100 - availability_percent``.
- Latency, for each service on its own: the share of its requests slower than
  ``latency_ms``, against a budget of ``1 - latency_share``.

An alert's component is ``availability:60m/5m``, or ``latency:shop:60m/5m`` for a service.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import HealthSweep
from app.schemas.alerts import BurnWindow
from app.services.alerts.rules.base import HOLD, Decision, RuleResult, Verdict
from app.services.alerts.rules.context import RuleContext
from app.services.performance import window_figures
from app.vocabulary.health import ComponentStatus

MIN_SWEEPS = 3


def burn(
    slo: str,
    pair: BurnWindow,
    long_bad: float | None,
    short_bad: float | None,
    budget: float,
    *,
    firing: bool,
    service: str | None = None,
) -> Verdict:
    """Fires while both windows burn the error budget at least ``burn_rate`` times too fast;
    ``service`` names whose budget it is, when it is one service's."""
    if long_bad is None or short_bad is None:
        return HOLD
    long_rate, short_rate = long_bad / budget, short_bad / budget
    whose = f"{slo} of {service}" if service else slo
    figures = {
        "slo": slo,
        **({"service": service} if service else {}),
        "budget": budget,
        "burn_rate_threshold": pair.burn_rate,
        f"burn_rate_{pair.long_minutes}m": round(long_rate, 2),
        f"burn_rate_{pair.short_minutes}m": round(short_rate, 2),
    }
    burning = long_rate >= pair.burn_rate and short_rate >= pair.burn_rate
    if burning and not firing:
        spent = timedelta(days=30) / pair.burn_rate
        return Verdict(
            Decision.FIRE,
            f"{whose} error budget burning {long_rate:.1f}x over {pair.long_minutes} min and "
            f"{short_rate:.1f}x over {pair.short_minutes} min (a 30-day budget lasts "
            f"{spent.total_seconds() / 86400:.1f} days at this rate)",
            figures,
        )
    if firing and short_rate < pair.burn_rate:
        return Verdict(Decision.CLEAR, f"{whose} burn down to {short_rate:.1f}x", figures)
    return HOLD


async def unhealthy_share(
    session: AsyncSession, since: datetime, until: datetime, *, min_bad: int = 1
) -> float | None:
    """The share of sweeps in ``[since, until]`` whose overall status was unhealthy; None
    with fewer than ``MIN_SWEEPS``. Fewer than ``min_bad`` unhealthy sweeps count as none:
    a budget does not burn faster than the component rules would call an outage."""
    total, bad = (
        await session.execute(
            select(
                func.count(HealthSweep.id),
                func.count(HealthSweep.id).filter(HealthSweep.status == ComponentStatus.UNHEALTHY),
            ).where(
                HealthSweep.started_at >= since,
                HealthSweep.started_at <= until,
                HealthSweep.status.is_not(None),
            )
        )
    ).one()
    if total < MIN_SWEEPS:
        return None
    return bad / total if bad >= min_bad else 0.0


async def slow_shares(
    session: AsyncSession, since: datetime, until: datetime, *, latency_ms: float, min_requests: int
) -> dict[str, float]:
    """Per service, the share of its requests in the range slower than ``latency_ms``; a
    service with fewer than ``min_requests`` is left out."""
    services = (await window_figures(session, since, until, latency_ms=latency_ms)).services
    return {
        service: 1 - figures.within_slo
        for service, figures in services.items()
        if figures.within_slo is not None and figures.requests >= min_requests
    }


class ErrorBudgetBurn:
    name: Final = "error_budget_burn"

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        session, now, objectives = context.session, context.now, context.objectives
        availability_budget = 1 - objectives.availability_percent / 100
        latency_budget = 1 - objectives.latency_share
        results = []
        for pair in context.rules.burn_windows:
            long_since = now - timedelta(minutes=pair.long_minutes)
            short_since = now - timedelta(minutes=pair.short_minutes)
            windows = f"{pair.long_minutes}m/{pair.short_minutes}m"
            availability = (
                await unhealthy_share(session, long_since, now),
                # Both windows must burn, so this alone holds the alert until fail_after.
                await unhealthy_share(session, short_since, now, min_bad=context.rules.fail_after),
            )
            long_slow = await slow_shares(
                session,
                long_since,
                now,
                latency_ms=objectives.latency_ms,
                min_requests=context.rules.min_requests,
            )
            short_slow = await slow_shares(
                session, short_since, now, latency_ms=objectives.latency_ms, min_requests=1
            )
            # (the objective, whose budget: None for the whole system, the bad shares, budget)
            budgets = [
                ("availability", None, availability, availability_budget),
                *(
                    (
                        "latency",
                        service,
                        (long_slow.get(service), short_slow.get(service)),
                        latency_budget,
                    )
                    for service in sorted(long_slow.keys() | short_slow.keys())
                ),
            ]
            for slo, service, (long_bad, short_bad), budget in budgets:
                component = f"{slo}:{service}:{windows}" if service else f"{slo}:{windows}"
                verdict = burn(
                    slo,
                    pair,
                    long_bad,
                    short_bad,
                    budget,
                    firing=context.is_firing(self.name, component),
                    service=service,
                )
                results.append(RuleResult(self.name, component, pair.severity, verdict))
        return results
