"""Automated alerts: rules over the health and request history, notifications, and the
incident loop that opens an issue when a component goes down and notes its recovery.

Other domains use it through the names below; its modules are its own business.
"""

from app.services.alerts.dispatcher import Dispatcher
from app.services.alerts.engine import AlertEngine, channels_of

__all__ = ["AlertEngine", "Dispatcher", "channels_of"]
