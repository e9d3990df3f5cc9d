"""Dependency checks of the SystemMonitor, one module per kind (system, SQL, MongoDB, Redis,
HTTP, TCP) listed in ``registry``.

``run_checks(targets, context)`` runs a sweep: every target concurrently, each under its own
timeout, every failure folded into a ``CheckResult``. ``registry.parse_targets`` turns the
settings' raw entries into the kinds' target models; ``CheckContext`` shares clients and
the application's engines.
"""

from app.services.health.checks.context import CheckContext
from app.services.health.checks.runner import run_check, run_checks
from app.vocabulary.health import CheckResult

__all__ = ["CheckContext", "CheckResult", "run_check", "run_checks"]
