"""error_budget_burn: the error budgets of the objectives (``settings.objectives``) burning
too fast, as the SRE workbook's multi-window, multi-burn-rate alerts: both the long and the
short window of a ``burn_windows`` pair must burn at least its rate.

- Availability: the share of sweeps whose overall status was unhealthy, against a budget of
  ``100 - availability_percent``.
- Latency: the share of requests slower than ``latency_ms``, against a budget of
  ``1 - latency_share``.
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
) -> Verdict:
    """Fires while both windows burn the error budget at least ``burn_rate`` times too fast."""
    if long_bad is None or short_bad is None:
        return HOLD
    long_rate, short_rate = long_bad / budget, short_bad / budget
    figures = {
        "slo": slo,
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
            f"{slo} error budget burning {long_rate:.1f}x over {pair.long_minutes} min and "
            f"{short_rate:.1f}x over {pair.short_minutes} min (a 30-day budget lasts "
            f"{spent.total_seconds() / 86400:.1f} days at this rate)",
            figures,
        )
    if firing and short_rate < pair.burn_rate:
        return Verdict(Decision.CLEAR, f"{slo} burn down to {short_rate:.1f}x", figures)
    return HOLD


async def unhealthy_share(session: AsyncSession, since: datetime, until: datetime) -> float | None:
    """The share of sweeps in ``[since, until]`` whose overall status was unhealthy; None
    with fewer than ``MIN_SWEEPS`` (one bad sweep alone is the component rules' business)."""
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
    return bad / total if total >= MIN_SWEEPS else None


async def slow_share(
    session: AsyncSession, since: datetime, until: datetime, *, latency_ms: float, min_requests: int
) -> float | None:
    """The share of requests in the range slower than ``latency_ms``; None with fewer than
    ``min_requests``."""
    overall = (await window_figures(session, since, until, latency_ms=latency_ms)).overall
    if overall.within_slo is None or overall.requests < min_requests:
        return None
    return 1 - overall.within_slo


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
                await unhealthy_share(session, short_since, now),
            )
            latency = (
                await slow_share(
                    session,
                    long_since,
                    now,
                    latency_ms=objectives.latency_ms,
                    min_requests=context.rules.min_requests,
                ),
                await slow_share(
                    session, short_since, now, latency_ms=objectives.latency_ms, min_requests=1
                ),
            )
            for slo, (long_bad, short_bad), budget in (
                ("availability", availability, availability_budget),
                ("latency", latency, latency_budget),
            ):
                component = f"{slo}:{windows}"
                verdict = burn(
                    slo,
                    pair,
                    long_bad,
                    short_bad,
                    budget,
                    firing=context.is_firing(self.name, component),
                )
                results.append(RuleResult(self.name, component, pair.severity, verdict))
        return results
