"""Health monitoring: SystemMonitor, one check per kind, history and rollups, trends, the loop.

Other domains use it through the names below; its modules are its own business.
"""

from app.services.health.loop import run_loop
from app.services.health.system_monitor import SystemMonitor, monitored_targets
from app.services.health.trends import HealthTrendQuery
from app.services.health.windows import (
    Window,
    config_windows,
    covering,
    open_windows,
    stored_window,
)

__all__ = [
    "HealthTrendQuery",
    "SystemMonitor",
    "Window",
    "config_windows",
    "covering",
    "monitored_targets",
    "open_windows",
    "run_loop",
    "stored_window",
]
