"""Enumerations with an order of urgency."""

from __future__ import annotations

from enum import StrEnum


class Ranked(StrEnum):
    """A StrEnum whose members are declared from the least to the most urgent."""

    @property
    def rank(self) -> int:
        """Higher is more urgent; used to sort."""
        return list(type(self)).index(self)
