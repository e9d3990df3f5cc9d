"""The rule registry: every rule the API can name is registered exactly once, and a rule
added on one side only stops the service from loading instead of going silently unused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest

from app.services.alerts.rules import RULES, RegistryError, checked
from app.services.alerts.rules.base import RuleResult
from app.services.alerts.rules.context import RuleContext
from app.vocabulary.alerts import RULE_NAMES, RuleName


@dataclass(frozen=True)
class Named:
    """A rule that only has a name: all the registry looks at."""

    name: RuleName

    async def evaluate(self, context: RuleContext) -> list[RuleResult]:
        return []


class TestRegistry:
    def test_every_known_rule_name_is_registered_once(self) -> None:
        assert sorted(rule.name for rule in RULES) == sorted(RULE_NAMES)

    def test_a_name_missing_from_the_registry_fails_loudly(self) -> None:
        with pytest.raises(RegistryError, match="error_budget_burn has no registered rule"):
            checked(tuple(rule for rule in RULES if rule.name != "error_budget_burn"))

    def test_a_rule_the_vocabulary_does_not_know_fails_loudly(self) -> None:
        # The type checker refuses this name; the registry refuses it at run time too.
        stray = Named(cast(RuleName, "disk_smart"))

        with pytest.raises(RegistryError, match="disk_smart is not in RuleName"):
            checked((*RULES, stray))

    def test_a_name_registered_twice_fails_loudly(self) -> None:
        with pytest.raises(RegistryError, match="flapping is registered 2 times"):
            checked((*RULES, Named("flapping")))
