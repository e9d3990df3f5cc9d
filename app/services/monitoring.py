"""Assembles what one process needs to monitor: the SystemMonitor, with the alert rules
(health, resources, request performance and error budgets) watching every sweep it
stores, and the dispatcher that sends their notifications.

The server and ``scripts/monitor_system.py`` both build it here, so a sweep evaluates the
same rules whichever of them ran it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.config import Settings
from app.db.store import Store
from app.services.alerts.dispatcher import Dispatcher
from app.services.alerts.engine import AlertEngine, channels_of
from app.services.alerts.performance_rules import performance_rules
from app.services.health.system_monitor import SystemMonitor


@dataclass(frozen=True)
class Monitoring:
    monitor: SystemMonitor
    dispatcher: Dispatcher


def build_monitoring(store: Store, settings: Settings) -> Monitoring:
    """The monitor with its alert engine attached, and the notification dispatcher."""
    monitor = SystemMonitor(store, settings)
    extra_rules = [performance_rules(settings.alert_rules)]
    monitor.observers.append(AlertEngine.from_settings(settings, extra_rules))
    return Monitoring(monitor, Dispatcher(store, channels_of(settings)))
