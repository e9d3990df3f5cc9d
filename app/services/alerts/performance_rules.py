"""Alert rules over the request metrics and the error budgets, run after every sweep.

- An endpoint's (or the whole service's) p95 over target, or its 5xx share over a limit,
  over a sliding window with a minimum number of requests, so three slow requests at night
  page nobody.
- Error-budget burn of the availability SLO (sweeps whose overall status was unhealthy)
  and of the latency SLO (requests slower than 2 s), as the SRE workbook's
  multi-window, multi-burn-rate alerts: both the long and the short window must burn.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert, HealthSweep
from app.schemas.alerts import AlertRules, BurnWindow
from app.services.alerts.engine import ExtraRule, key
from app.services.alerts.rules import HOLD, Decision, Verdict
from app.services.performance.figures import SLO_SHARE, RouteFigures, window_figures
from app.vocabulary.alerts import AlertRule, AlertSeverity
from app.vocabulary.health import ComponentStatus

OVERALL = "*"
MIN_SWEEPS = 3
Finding = tuple[AlertRule, str, AlertSeverity, Verdict]


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


def endpoint_findings(
    name: str, figures: RouteFigures, rules: AlertRules, firing: dict[str, Alert]
) -> list[Finding]:
    """Latency and error-rate verdicts of one endpoint (or of the whole service)."""
    enough = figures.requests >= rules.min_requests
    window = {"requests": figures.requests, "window_minutes": rules.performance_window_minutes}
    return [
        (
            AlertRule.ENDPOINT_LATENCY,
            name,
            AlertSeverity.WARNING,
            above(
                f"p95 of {name}",
                figures.p95_ms,
                rules.p95_ms,
                enough=enough,
                firing=key(AlertRule.ENDPOINT_LATENCY, name) in firing,
                unit="ms",
                figures=window,
            ),
        ),
        (
            AlertRule.ERROR_RATE,
            name,
            AlertSeverity.CRITICAL,
            above(
                f"5xx share of {name}",
                figures.error_rate,
                rules.error_rate,
                enough=enough,
                firing=key(AlertRule.ERROR_RATE, name) in firing,
                unit="of requests",
                figures=window,
            ),
        ),
    ]


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


def performance_rules(rules: AlertRules) -> ExtraRule:
    """The performance and error-budget rules, as an extra rule of the alert engine."""

    async def evaluate(
        session: AsyncSession, now: datetime, firing: dict[str, Alert]
    ) -> list[Finding]:
        window = timedelta(minutes=rules.performance_window_minutes)
        recent = await window_figures(session, now - window, now)
        findings = endpoint_findings(OVERALL, recent.overall, rules, firing)
        for (method, route), figures in recent.endpoints.items():
            findings += endpoint_findings(f"{method} {route}", figures, rules, firing)
        availability_budget = 1 - rules.availability_slo / 100
        for pair in rules.burn_windows:
            long_since = now - timedelta(minutes=pair.long_minutes)
            short_since = now - timedelta(minutes=pair.short_minutes)
            severity = pair.severity
            name = f"availability:{pair.long_minutes}m/{pair.short_minutes}m"
            findings.append(
                (
                    AlertRule.ERROR_BUDGET_BURN,
                    name,
                    severity,
                    burn(
                        "availability",
                        pair,
                        await unhealthy_share(session, long_since, now),
                        await unhealthy_share(session, short_since, now),
                        availability_budget,
                        firing=key(AlertRule.ERROR_BUDGET_BURN, name) in firing,
                    ),
                )
            )
            long_slow = await slow_share(session, long_since, now, rules.min_requests)
            short_slow = await slow_share(session, short_since, now, 1)
            name = f"latency:{pair.long_minutes}m/{pair.short_minutes}m"
            findings.append(
                (
                    AlertRule.ERROR_BUDGET_BURN,
                    name,
                    severity,
                    burn(
                        "latency",
                        pair,
                        long_slow,
                        short_slow,
                        1 - SLO_SHARE,
                        firing=key(AlertRule.ERROR_BUDGET_BURN, name) in firing,
                    ),
                )
            )
        return findings

    return evaluate


async def slow_share(
    session: AsyncSession, since: datetime, until: datetime, min_requests: int
) -> float | None:
    """The share of requests in the range slower than the SLO's 2 s, with enough requests."""
    figures = await window_figures(session, since, until)
    within = figures.overall.within_slo
    if within is None or figures.overall.requests < min_requests:
        return None
    return 1 - within
