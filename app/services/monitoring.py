"""Assembles what one process needs to monitor: the SystemMonitor, with the alert rules
(health, resources, request performance and error budgets) watching every sweep it
stores, and the dispatcher that sends their notifications.

The server and ``scripts/monitor_system.py`` both build it here, so a sweep evaluates the
same rules whichever of them ran it. What the settings hold raw (the targets) is parsed
here, so ``check_configuration`` lets a command report a mistake before it starts anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.config import Settings
from app.db.store import Store
from app.services.alerts import AlertEngine, Dispatcher, channels_of
from app.services.health import SystemMonitor, monitored_targets


@dataclass(frozen=True)
class Monitoring:
    monitor: SystemMonitor
    dispatcher: Dispatcher


def check_configuration(settings: Settings) -> None:
    """Raise ConfigurationError, in one line, for a mistake in what the settings hold raw."""
    monitored_targets(settings)


def build_monitoring(store: Store, settings: Settings) -> Monitoring:
    """The monitor with its alert engine attached, and the notification dispatcher;
    ConfigurationError names a mistake in the targets."""
    monitor = SystemMonitor(store, settings)
    monitor.observers.append(AlertEngine.from_settings(settings))
    return Monitoring(monitor, Dispatcher(store, channels_of(settings)))
