"""Automated alerts: rules over the health history, notifications, maintenance windows, and
the incident loop that opens an issue when a component goes down and notes its recovery."""
