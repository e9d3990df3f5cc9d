"""Health monitoring: SystemMonitor, one check per kind, history and rollups, trends, the loop."""
