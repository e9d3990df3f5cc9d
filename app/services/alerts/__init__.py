"""Automated alerts: rules over the health and request history, notifications, and the
incident loop that opens an issue when a component goes down and notes its recovery.

Other domains use it through the names below; its modules are its own business.
"""

from app.services.alerts.dispatcher import Dispatcher
from app.services.alerts.engine import AlertEngine, channels_of
from app.services.alerts.status_page import StatusPage

__all__ = ["AlertEngine", "Dispatcher", "StatusPage", "channels_of"]
