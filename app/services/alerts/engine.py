"""The alert engine: after every stored sweep, evaluates each registered rule
(app/services/alerts/rules) and moves the alerts its results are about on.

It runs inside the unit of work that stored the sweep (the in-process loop, ``POST
/metrics/collect`` and ``scripts/monitor_system.py`` alike), so an alert change and the
notifications it owes are committed together. Raising, repeating and resolving write
delivery rows; the dispatcher sends them. Maintenance windows record alerts but hold their
notifications back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import Alert, AlertDelivery
from app.schemas.alerts import AlertRead, AlertRules
from app.schemas.health import Sweep
from app.schemas.objectives import Objectives
from app.services.alerts.channels import Channels
from app.services.alerts.incidents import IncidentLoop
from app.services.alerts.rules import RULES
from app.services.alerts.rules.base import Decision, RuleResult, Verdict
from app.services.alerts.rules.context import RuleContext
from app.services.health import Window, config_windows, covering, open_windows
from app.services.issues import ResolutionTargets
from app.vocabulary.alerts import AlertState, DeliveryState


@dataclass(frozen=True)
class AlertSettings:
    """What the engine reads from the settings, once."""

    rules: AlertRules
    objectives: Objectives
    windows: tuple[Window, ...]
    channels: Channels
    targets: ResolutionTargets
    interval_seconds: float


def channels_of(settings: Settings) -> Channels:
    """The notification channels the settings name."""
    secret = settings.alert_webhook_secret
    return Channels(
        webhooks=settings.alert_webhooks,
        apprise_urls=settings.alert_apprise_urls,
        secret=secret.get_secret_value() if secret else None,
    )


class AlertEngine:
    """Evaluates the rules after each sweep; a SweepObserver of the SystemMonitor."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The engine with the rules, objectives, windows and channels of ``settings``."""
        return cls(
            AlertSettings(
                rules=settings.alert_rules,
                objectives=settings.objectives,
                windows=tuple(config_windows(settings.maintenance_windows)),
                channels=channels_of(settings),
                targets=ResolutionTargets(hours=settings.issue_resolution_target_hours),
                interval_seconds=settings.monitor_interval_seconds,
            )
        )

    async def __call__(self, session: AsyncSession, sweep: Sweep) -> None:
        await Evaluation(session, sweep, self.settings).run()


class Evaluation:
    """One sweep's evaluation of every registered rule."""

    def __init__(self, session: AsyncSession, sweep: Sweep, settings: AlertSettings) -> None:
        self.session = session
        self.sweep = sweep
        self.settings = settings
        self.rules = settings.rules
        self.now = sweep.checked_at
        self.windows: list[Window] = []
        self.firing: dict[str, Alert] = {}

    async def run(self) -> None:
        self.windows = await open_windows(self.session, self.settings.windows, self.now)
        alerts = await self.session.scalars(select(Alert).where(Alert.state == AlertState.FIRING))
        self.firing = {alert.key: alert for alert in alerts}
        context = RuleContext(
            session=self.session,
            sweep=self.sweep,
            rules=self.rules,
            objectives=self.settings.objectives,
            interval_seconds=self.settings.interval_seconds,
            firing=self.firing,
        )
        # Each rule's results are applied before the next rule runs: see RULES' order.
        for rule in RULES:
            for result in await rule.evaluate(context):
                await self.apply(result)

    async def apply(self, result: RuleResult) -> None:
        """Moves the alert ``result`` is about as its verdict says."""
        alert = self.firing.get(result.key)
        quiet = covering(self.windows, result.component, result.rule, self.now) is not None
        if alert is None:
            if result.verdict.decision is Decision.FIRE:
                await self._raise(result, quiet=quiet)
            return
        if result.verdict.decision is Decision.CLEAR:
            await self._resolve(alert, result.verdict)
            return
        alert.last_seen = self.now
        alert.count += 1
        if alert.suppressed and not quiet:
            alert.suppressed = False
            self._notify(alert, "firing")
        elif self._repeat_due(alert, quiet):
            self._notify(alert, "repeat")

    async def _raise(self, result: RuleResult, *, quiet: bool) -> None:
        alert = Alert(
            key=result.key,
            rule=result.rule,
            component=result.component,
            severity=result.severity,
            state=AlertState.FIRING,
            message=result.verdict.message,
            figures=result.verdict.figures,
            first_seen=self.now,
            last_seen=self.now,
            count=1,
            suppressed=quiet,
        )
        self.session.add(alert)
        await self.session.flush()
        self.firing[alert.key] = alert
        if not quiet:
            self._notify(alert, "firing")
        if result.opens_incident and self.rules.incident_issues:
            incidents = IncidentLoop(self.session, targets=self.settings.targets, now=self.now)
            alert.incident_issue_id = await incidents.open(alert)

    async def _resolve(self, alert: Alert, verdict: Verdict) -> None:
        alert.state = AlertState.RESOLVED
        alert.resolved_at = alert.last_seen = self.now
        alert.figures = {**alert.figures, "resolution": verdict.figures}
        del self.firing[alert.key]
        if alert.last_notified_at is not None:
            self._notify(alert, "resolved")
        if alert.incident_issue_id is not None:
            await self.session.flush()
            incidents = IncidentLoop(self.session, targets=self.settings.targets, now=self.now)
            await incidents.recovered(alert)

    def _repeat_due(self, alert: Alert, quiet: bool) -> bool:
        if quiet or alert.acknowledged_at is not None or alert.last_notified_at is None:
            return False
        return self.now - alert.last_notified_at >= timedelta(minutes=self.rules.repeat_minutes)

    def _notify(self, alert: Alert, event: str) -> None:
        alert.last_notified_at = self.now
        payload = notification(alert, event, self.now)
        for channel in self.settings.channels.names():
            self.session.add(
                AlertDelivery(
                    alert_id=alert.id,
                    channel=channel,
                    event=event,
                    payload=payload,
                    state=DeliveryState.PENDING,
                    attempts=0,
                    next_attempt_at=self.now,
                    created_at=self.now,
                )
            )


def notification(alert: Alert, event: str, now: datetime) -> dict[str, Any]:
    """The JSON a channel receives: the event and the alert, naming the component."""
    return {
        "event": event,
        "sent_at": now.isoformat(),
        "component": alert.component,
        "alert": AlertRead.model_validate(alert).model_dump(mode="json"),
    }
