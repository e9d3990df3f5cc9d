"""The checks' shared vocabulary: what a probe finds, what a kind of check is, how usage is
rated.

Each sibling module (``system``, ``sql``, ``tcp``...) defines one kind of check as a
``CheckKind``: its target model, a ``probe`` that talks to one dependency and returns a
``Finding`` (it may raise freely), the exceptions that mean the dependency failed, and its
application/health+json component type. ``registry`` lists the kinds; ``runner`` wraps every
probe with the target's timeout, turns any failure into a result, and adds name, kind and
time to make the ``CheckResult`` that SystemMonitor stores and the API returns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.schemas.targets import PercentThresholds, Target, mask_url
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentStatus, worst_status

T = TypeVar("T")
TargetT = TypeVar("TargetT", bound=Target)

MESSAGE_LIMIT = 240
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


@dataclass(frozen=True, slots=True)
class Finding:
    """What a probe learnt: a status, the latency of its main round trip, a line, figures."""

    status: ComponentStatus
    latency_ms: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckKind(Generic[TargetT]):
    """One kind of check, everything the settings, the runner and the health format need."""

    target: type[TargetT]
    probe: Callable[[TargetT, CheckContext], Awaitable[Finding]]
    # What a probe raises when the dependency itself failed (refused, reset, rejected):
    # unhealthy. Any other exception is a fault of the check, and the component unknown.
    failures: tuple[type[BaseException], ...]
    # componentType in application/health+json: "system", "datastore" or "component".
    component_type: str

    @property
    def name(self) -> str:
        """The ``kind`` its targets are written with: the default of the model's field."""
        return str(self.target.model_fields["kind"].default)


@dataclass(frozen=True, slots=True)
class Gauge:
    """One usage figure to rate, e.g. memory at 87 %; ``cap`` bounds how bad it alone can be."""

    label: str
    percent: float
    cap: ComponentStatus = ComponentStatus.UNHEALTHY


def rate_percent(percent: float, thresholds: PercentThresholds) -> ComponentStatus:
    """Healthy, degraded or unhealthy for a usage percentage."""
    if percent >= thresholds.unhealthy_percent:
        return ComponentStatus.UNHEALTHY
    if percent >= thresholds.degraded_percent:
        return ComponentStatus.DEGRADED
    return ComponentStatus.HEALTHY


def _rate_gauge(gauge: Gauge, thresholds: PercentThresholds) -> ComponentStatus:
    rated = rate_percent(gauge.percent, thresholds)
    return gauge.cap if rated.severity > gauge.cap.severity else rated


def rate_gauges(
    gauges: Iterable[Gauge], thresholds: PercentThresholds
) -> tuple[ComponentStatus, str]:
    """The worst rating of ``gauges`` and a line naming those past a threshold (or all)."""
    rated = [(gauge, _rate_gauge(gauge, thresholds)) for gauge in gauges]
    status = worst_status(rating for _, rating in rated) if rated else ComponentStatus.HEALTHY
    if status is ComponentStatus.HEALTHY:
        return status, ", ".join(f"{gauge.label} {gauge.percent:.1f}%" for gauge, _ in rated)
    limits = {
        ComponentStatus.DEGRADED: thresholds.degraded_percent,
        ComponentStatus.UNHEALTHY: thresholds.unhealthy_percent,
    }
    complaints = [
        f"{gauge.label} {gauge.percent:.1f}% >= {limits[rating]:g}%"
        for gauge, rating in rated
        if rating in limits
    ]
    return status, "; ".join(complaints)


def percent_of(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole``, rounded for display; 0 when there is no whole."""
    return round(100.0 * part / whole, 2) if whole > 0 else 0.0


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return round((time.perf_counter() - started) * 1000.0, 2)


async def timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    """Await ``awaitable`` and return its result with the milliseconds it took."""
    started = time.perf_counter()
    result = await awaitable
    return result, elapsed_ms(started)


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` squeezed to one line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def scrub(text: str, secret_url: str | None = None) -> str:
    """``text`` with every URL in it masked, and the target's own URL never shown raw."""
    if secret_url:
        text = text.replace(secret_url, mask_url(secret_url))
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)


def describe_error(exc: BaseException, secret_url: str | None = None) -> str:
    """A one-line, masked account of ``exc``: its type and the first line of its message."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    return one_line(scrub(text, secret_url))
