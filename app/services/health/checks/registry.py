"""Every kind of check Watchkeeper knows, in one list, and the parsing of targets through it.

A new kind is a module beside this one defining its target model and ``KIND``, and one
line in ``_KINDS`` below; the settings, the runner and application/health+json all read
this registry, and the store keeps kinds as plain names, so no migration is needed.

``parse_targets`` turns the raw ``[[targets]]`` entries of the settings into target models;
a mistake is a ``ConfigurationError`` naming the target and the field, in one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from app.core.config import ConfigurationError
from app.schemas.targets import Target
from app.services.health.checks import http, mongodb, redis, sql, system, tcp
from app.services.health.checks.base import CheckKind

_KINDS: tuple[CheckKind[Any], ...] = (
    system.KIND,
    sql.KIND,
    mongodb.KIND,
    redis.KIND,
    http.KIND,
    tcp.KIND,
)
KINDS: Mapping[str, CheckKind[Any]] = {kind.name: kind for kind in _KINDS}


def kind_of(target: Target) -> CheckKind[Any]:
    """The registered kind a target model belongs to."""
    return KINDS[target.kind]


def component_type(kind: str) -> str:
    """The application/health+json componentType of a kind of check."""
    return KINDS[kind].component_type


def _where(index: int, entry: object) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"target {name!r}" if isinstance(name, str) else f"target #{index + 1}"


def _problems(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in detail['loc']) or 'entry'}: {detail['msg']}"
        for detail in error.errors()
    ]


def _parse_entry(entry: object) -> Target | list[str]:
    """One target model from a raw entry (or a model built in code), or what is wrong."""
    if isinstance(entry, Target) and entry.kind in KINDS:
        return entry
    if not isinstance(entry, Mapping):
        return ["entry: must be a table with a name and a kind"]
    known = ", ".join(KINDS)
    if "kind" not in entry:
        return [f"kind: missing; must be one of {known}"]
    kind = KINDS.get(entry["kind"]) if isinstance(entry["kind"], str) else None
    if kind is None:
        return [f"kind: must be one of {known}, got {entry['kind']!r}"]
    try:
        target: Target = kind.target.model_validate(entry)
    except ValidationError as error:
        return _problems(error)
    return target


def parse_targets(raw: Sequence[object]) -> list[Target]:
    """Validate the targets of the settings; ConfigurationError names every mistake."""
    targets: list[Target] = []
    problems: list[str] = []
    for index, entry in enumerate(raw):
        parsed = _parse_entry(entry)
        if isinstance(parsed, Target):
            targets.append(parsed)
        else:
            problems += [f"{_where(index, entry)}: {problem}" for problem in parsed]
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            problems.append(f"target {target.name!r}: name: used by more than one target")
        seen.add(target.name)
    if problems:
        raise ConfigurationError(f"invalid configuration: targets: {'; '.join(problems)}")
    return targets
