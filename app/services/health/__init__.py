"""Health monitoring: SystemMonitor, one check per kind, history and rollups, trends, the loop.

Other domains use it through the names below; its modules are its own business.
"""

from app.services.health.components import component_history, list_components
from app.services.health.loop import run_loop
from app.services.health.system_monitor import SystemMonitor, monitored_targets
from app.services.health.trends import HealthTrendQuery
from app.services.health.uptime import DailyUptime, daily_uptime, period_uptime
from app.services.health.windows import (
    Window,
    config_windows,
    covering,
    known_windows,
    open_windows,
    stored_window,
)

__all__ = [
    "DailyUptime",
    "HealthTrendQuery",
    "SystemMonitor",
    "Window",
    "component_history",
    "config_windows",
    "covering",
    "daily_uptime",
    "known_windows",
    "list_components",
    "monitored_targets",
    "open_windows",
    "period_uptime",
    "run_loop",
    "stored_window",
]
