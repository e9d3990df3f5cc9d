"""Dependency checks of the SystemMonitor: system, SQL, MongoDB, Redis and HTTP.

``run_checks(targets, context)`` runs a sweep: every target concurrently, each under its own
timeout, every failure folded into a ``CheckResult``. Targets are the models of
``app.schemas.targets``; ``CheckContext`` shares HTTP clients and the application's engines.
"""

from app.services.health.checks.runner import CheckContext, run_check, run_checks
from app.vocabulary.health import CheckResult

__all__ = ["CheckContext", "CheckResult", "run_check", "run_checks"]
