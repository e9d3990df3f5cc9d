"""The alert rules, one module each, and ``RULES``: the registry the engine evaluates after
every sweep, in this order.

Adding a rule: write its module (a ``Rule`` of ``base``: a ``name``, and an ``evaluate``
that returns typed results), add the name to ``RuleName`` in app/vocabulary/alerts.py (what
the API accepts as a rule), and register it below. The registry refuses to load when the
two lists disagree, so forgetting either side fails at import, in every test.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from app.services.alerts.rules.base import Rule
from app.services.alerts.rules.component_down import ComponentDown
from app.services.alerts.rules.endpoints import ENDPOINT_LATENCY, ERROR_RATE
from app.services.alerts.rules.error_budget_burn import ErrorBudgetBurn
from app.services.alerts.rules.flapping import Flapping
from app.services.alerts.rules.own_network import OwnNetwork
from app.services.alerts.rules.resource import Resource
from app.services.alerts.rules.slow_dependency import SlowDependency
from app.vocabulary.alerts import RULE_NAMES


class RegistryError(Exception):
    """The registered rules and the vocabulary's rule names disagree."""


def checked(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """``rules``, once they carry each known rule name exactly once."""
    counts = Counter(rule.name for rule in rules)
    problems = [
        *(f"{name} is registered {n} times" for name, n in counts.items() if n > 1),
        *(f"{name} is not in RuleName" for name in counts if name not in RULE_NAMES),
        *(f"{name} has no registered rule" for name in RULE_NAMES if name not in counts),
    ]
    if problems:
        raise RegistryError("; ".join(problems))
    return rules


RULES: Final = checked(
    (
        # First: while it fires, the per-component rules leave the HTTP targets alone.
        OwnNetwork(),
        ComponentDown(),
        Flapping(),
        SlowDependency(),
        Resource(),
        ENDPOINT_LATENCY,
        ERROR_RATE,
        ErrorBudgetBurn(),
    )
)
