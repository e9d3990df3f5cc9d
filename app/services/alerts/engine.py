"""The alert engine: after every stored sweep, evaluates each rule and moves alerts on.

It runs inside the unit of work that stored the sweep (the in-process loop, ``POST
/metrics/collect`` and ``scripts/monitor_system.py`` alike), so an alert change and the
notifications it owes are committed together. Raising, repeating and resolving write
delivery rows; the dispatcher sends them. Maintenance windows record alerts but hold their
notifications back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import Alert, AlertDelivery, HealthResult, HealthSweep
from app.schemas.alerts import AlertRead, AlertRules
from app.schemas.health import Sweep
from app.services.alerts import rules as r
from app.services.alerts.channels import Channels
from app.services.alerts.incidents import IncidentLoop
from app.services.health.windows import Window, config_windows, covering, open_windows
from app.services.issues.sla import ResolutionTargets
from app.vocabulary.alerts import AlertRule, AlertSeverity, AlertState, DeliveryState
from app.vocabulary.health import ComponentKind, ComponentStatus

MONITOR_COMPONENT = "watchkeeper"
RESOURCES = (("cpu", "cpu_percent"), ("memory", "memory_percent"), ("disk", "disk_percent"))

# Extra rules (the performance ones) plug in here: each returns (rule, component, verdict).
ExtraRule = Callable[
    [AsyncSession, datetime, dict[str, Alert]],
    Awaitable[list[tuple[AlertRule, str, AlertSeverity, r.Verdict]]],
]


@dataclass(frozen=True)
class AlertSettings:
    rules: AlertRules
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

    def __init__(self, settings: AlertSettings, extra_rules: Sequence[ExtraRule] = ()) -> None:
        self.settings = settings
        self.extra_rules = list(extra_rules)

    @classmethod
    def from_settings(cls, settings: Settings, extra_rules: Sequence[ExtraRule] = ()) -> Self:
        """The engine with the rules, windows and channels of ``settings``."""
        return cls(
            AlertSettings(
                rules=settings.alert_rules,
                windows=tuple(config_windows(settings.maintenance_windows)),
                channels=channels_of(settings),
                targets=ResolutionTargets(hours=settings.issue_resolution_target_hours),
                interval_seconds=settings.monitor_interval_seconds,
            ),
            extra_rules,
        )

    async def __call__(self, session: AsyncSession, sweep: Sweep) -> None:
        await Evaluation(session, sweep, self.settings, self.extra_rules).run()


class Evaluation:
    """One sweep's evaluation of every rule."""

    def __init__(
        self,
        session: AsyncSession,
        sweep: Sweep,
        settings: AlertSettings,
        extra_rules: Sequence[ExtraRule],
    ) -> None:
        self.session = session
        self.sweep = sweep
        self.settings = settings
        self.rules = settings.rules
        self.extra_rules = extra_rules
        self.now = sweep.checked_at
        self.windows: list[Window] = []
        self.firing: dict[str, Alert] = {}

    async def run(self) -> None:
        self.windows = await open_windows(self.session, self.settings.windows, self.now)
        alerts = await self.session.scalars(select(Alert).where(Alert.state == AlertState.FIRING))
        self.firing = {alert.key: alert for alert in alerts}
        history = await self._history()
        network_down = await self._own_network()
        for result in self.sweep.components:
            if network_down and result.kind is ComponentKind.HTTP:
                continue  # one alert about ourselves instead of one per target
            await self._component(result.name, result.kind, history.get(result.name, []))
        await self._resources()
        for extra in self.extra_rules:
            for rule, component, severity, verdict in await extra(
                self.session, self.now, self.firing
            ):
                await self.apply(rule, component, severity, verdict)

    async def _history(self) -> dict[str, list[HealthResult]]:
        """The last results of each component, oldest first (this sweep's included): enough
        for the sweep-counting rules, and for the latency samples of a slow dependency."""
        depth = max(
            self.rules.fail_window,
            self.rules.fail_after,
            self.rules.clear_after,
            self.rules.flap_window,
        )
        lookback = max(
            timedelta(seconds=self.settings.interval_seconds * depth * 4),
            timedelta(minutes=self.rules.slow_minutes * 2),
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

    async def _component(self, name: str, kind: ComponentKind, history: list[HealthResult]) -> None:
        statuses = [row.status for row in history]
        down_key = key(AlertRule.COMPONENT_DOWN, name)
        await self.apply(
            AlertRule.COMPONENT_DOWN,
            name,
            AlertSeverity.CRITICAL,
            r.component_down(name, statuses, firing=down_key in self.firing, rules=self.rules),
        )
        await self.apply(
            AlertRule.FLAPPING,
            name,
            AlertSeverity.WARNING,
            r.flapping(
                name,
                statuses,
                firing=key(AlertRule.FLAPPING, name) in self.firing,
                rules=self.rules,
            ),
        )
        if kind is ComponentKind.SYSTEM:
            return
        window = timedelta(minutes=self.rules.slow_minutes)
        samples = [
            r.Sample(row.checked_at, row.latency_ms)
            for row in history
            if row.latency_ms is not None and row.status is not ComponentStatus.UNHEALTHY
        ]
        await self.apply(
            AlertRule.SLOW_DEPENDENCY,
            name,
            AlertSeverity.WARNING,
            r.sustained_above(
                f"{name} latency",
                samples,
                threshold=self.rules.slow_latency_ms,
                duration=window,
                now=self.now,
                unit="ms",
                firing=key(AlertRule.SLOW_DEPENDENCY, name) in self.firing,
            ),
        )

    async def _own_network(self) -> bool:
        http = {c.name: c.status for c in self.sweep.components if c.kind is ComponentKind.HTTP}
        own_key = key(AlertRule.OWN_NETWORK, MONITOR_COMPONENT)
        verdict = r.own_network(http, firing=own_key in self.firing, rules=self.rules)
        await self.apply(AlertRule.OWN_NETWORK, MONITOR_COMPONENT, AlertSeverity.CRITICAL, verdict)
        return own_key in self.firing

    async def _resources(self) -> None:
        window = timedelta(minutes=self.rules.resource_minutes)
        sweeps = list(
            await self.session.scalars(
                select(HealthSweep)
                .where(
                    HealthSweep.started_at >= self.now - window * 2,
                    HealthSweep.cpu_percent.is_not(None),
                )
                .order_by(HealthSweep.started_at)
            )
        )
        for resource, column in RESOURCES:
            threshold = getattr(self.rules, column)
            samples = [r.Sample(s.started_at, getattr(s, column)) for s in sweeps]
            await self.apply(
                AlertRule.RESOURCE,
                f"system:{resource}",
                AlertSeverity.WARNING,
                r.sustained_above(
                    f"{resource} use",
                    samples,
                    threshold=threshold,
                    duration=window,
                    now=self.now,
                    unit="%",
                    firing=key(AlertRule.RESOURCE, f"system:{resource}") in self.firing,
                ),
            )

    async def apply(
        self, rule: AlertRule, component: str, severity: AlertSeverity, verdict: r.Verdict
    ) -> None:
        """Moves the alert of ``rule`` on ``component`` as the verdict says."""
        alert_key = key(rule, component)
        alert = self.firing.get(alert_key)
        quiet = covering(self.windows, component, rule, self.now) is not None
        if alert is None:
            if verdict.decision is r.Decision.FIRE:
                await self._raise(rule, component, severity, verdict, quiet=quiet)
            return
        if verdict.decision is r.Decision.CLEAR:
            await self._resolve(alert, verdict)
            return
        alert.last_seen = self.now
        alert.count += 1
        if alert.suppressed and not quiet:
            alert.suppressed = False
            self._notify(alert, "firing")
        elif self._repeat_due(alert, quiet):
            self._notify(alert, "repeat")

    async def _raise(
        self,
        rule: AlertRule,
        component: str,
        severity: AlertSeverity,
        verdict: r.Verdict,
        *,
        quiet: bool,
    ) -> None:
        alert = Alert(
            key=key(rule, component),
            rule=rule,
            component=component,
            severity=severity,
            state=AlertState.FIRING,
            message=verdict.message,
            figures=verdict.figures,
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
        if rule is AlertRule.COMPONENT_DOWN and self.rules.incident_issues:
            incidents = IncidentLoop(self.session, targets=self.settings.targets, now=self.now)
            alert.incident_issue_id = await incidents.open(alert)

    async def _resolve(self, alert: Alert, verdict: r.Verdict) -> None:
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


def key(rule: AlertRule, component: str) -> str:
    """The identity of an alert: one rule on one component."""
    return f"{rule.value}:{component}"


def notification(alert: Alert, event: str, now: datetime) -> dict[str, Any]:
    """The JSON a channel receives: the event and the alert, naming the component."""
    return {
        "event": event,
        "sent_at": now.isoformat(),
        "component": alert.component,
        "alert": AlertRead.model_validate(alert).model_dump(mode="json"),
    }
