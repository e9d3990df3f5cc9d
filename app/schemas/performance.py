"""The performance API's answers: analysis, bottlenecks, recommendations, trends, SLOs and
the services measured.

An endpoint is one service's method and route, and is named so (``shop GET /orders``).
Durations are milliseconds, rates are shares in [0, 1], changes are relative
(``0.25`` = 25% more than the previous window). A figure that cannot be measured (no
requests, no history) is null, and ``note`` says why.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from app.schemas.base import ResponseSchema
from app.vocabulary.performance import RequestSource
from app.vocabulary.ranked import Ranked


class BottleneckKind(StrEnum):
    SLOW_ENDPOINT = "slow_endpoint"
    HIGH_ERROR_RATE = "high_error_rate"
    REGRESSION = "regression"
    HIGH_VARIANCE = "high_variance"
    RESOURCE = "resource"
    DEPENDENCY = "dependency"
    CAPACITY = "capacity"


class Severity(Ranked):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RecommendationCategory(StrEnum):
    DATABASE = "database"
    CACHING = "caching"
    ASYNC = "async"
    SCALING = "scaling"
    ERRORS = "errors"
    CAPACITY = "capacity"


class TrendPeriod(StrEnum):
    WEEK = "week"
    QUARTER = "quarter"


class WindowPrecision(StrEnum):
    """How exact a window of request figures is: to the minute, or from a whole hour."""

    MINUTE = "minute"
    HOUR = "hour"


class MeasurementWindow(ResponseSchema):
    """The stretch of time a figure was measured over."""

    start: datetime
    end: datetime
    hours: float
    precision: WindowPrecision | None = Field(
        default=None,
        description=(
            "Request figures only. minute: the window is exactly the one asked for, to the "
            "minute; hour: its start was older than the minute rows kept "
            "(performance_rollup_after_days), so it moved back to the start of its hour."
        ),
    )


class RequestFigures(ResponseSchema):
    requests: int
    requests_per_minute: float
    avg_ms: float | None
    median_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_rate: float | None = Field(description="Share of 5xx responses.")
    client_error_rate: float | None = Field(description="Share of 4xx responses.")
    share_of_time: float | None = Field(description="Share of all serving time spent here.")
    change: dict[str, float | None] = Field(
        description=(
            "Relative change of each figure against the previous window, of the same length; "
            "requests compares the rate, as requests_per_minute, so a window whose start "
            "moved to a whole hour still compares like for like."
        )
    )


class EndpointFigures(RequestFigures):
    service: str
    method: str
    route: str


class ResponseTimeSlo(ResponseSchema):
    """The latency objective: ``target_share`` of the requests within ``target_ms``."""

    target_ms: float = Field(description="The objectives' latency_ms.")
    target_share: float = Field(description="The objectives' latency_share.")
    share_within_target: float | None
    p95_ms: float | None
    met: bool | None


class PerformanceAnalysis(ResponseSchema):
    window: MeasurementWindow
    previous_window: MeasurementWindow
    overall: RequestFigures
    endpoints: list[EndpointFigures] = Field(description="Busiest (most total time) first.")
    slo: ResponseTimeSlo
    note: str | None


class EndpointEvidence(ResponseSchema):
    """The figures of an endpoint over the window, quoted by its recommendation."""

    service: str
    method: str
    route: str
    requests: int
    requests_per_minute: float | None
    median_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float
    error_rate: float | None = Field(description="Share of 5xx responses.")
    total_time_s: float = Field(description="Serving time spent on the endpoint.")


class ErrorRateEvidence(EndpointEvidence):
    server_errors: int


class RegressionEvidence(ResponseSchema):
    """A recent stretch against the rest of the window, and the test that tells them apart."""

    metric: str = Field(description="p95_ms, p99_ms or error_rate.")
    baseline: float
    recent: float
    ratio: float = Field(description="recent / baseline (against the smallest step at 0).")
    p_value: float = Field(description="One-sided two-proportion z-test.")
    baseline_requests: int
    recent_requests: int
    recent_since: datetime
    service: str
    method: str
    route: str


class ResourceEvidence(ResponseSchema):
    """The longest run of sweeps with a resource over its threshold."""

    resource: str
    mean_percent: float
    peak_percent: float
    minutes: float
    samples: int
    started_at: datetime
    ended_at: datetime


class CapacityEvidence(ResponseSchema):
    """The least-squares growth of a resource's use and when it reaches 100%."""

    resource: str
    percent_now: float
    growth_per_day: float = Field(description="Percentage points a day.")
    r_squared: float
    days_to_full: float
    full_at: datetime
    samples: int


class DependencyEvidence(ResponseSchema):
    """A component's check latency and outcomes over the window."""

    component: str
    kind: str = Field(description="The check's kind: database, redis, http...")
    latency_p95_ms: float
    latency_avg_ms: float
    checks: int
    failures: int


class BottleneckFields(ResponseSchema):
    """What every bottleneck says; each kind adds its own ``evidence``."""

    kind: BottleneckKind
    severity: Severity
    service: str | None = Field(
        default=None, description="The endpoint's service; null for hosts and dependencies."
    )
    target: str = Field(description="The endpoint (service METHOD route), component or resource.")
    metric: str
    value: float
    threshold: float
    message: str


class SlowEndpoint(BottleneckFields):
    kind: Literal[BottleneckKind.SLOW_ENDPOINT] = BottleneckKind.SLOW_ENDPOINT
    evidence: EndpointEvidence


class HighErrorRate(BottleneckFields):
    kind: Literal[BottleneckKind.HIGH_ERROR_RATE] = BottleneckKind.HIGH_ERROR_RATE
    evidence: ErrorRateEvidence


class HighVariance(BottleneckFields):
    kind: Literal[BottleneckKind.HIGH_VARIANCE] = BottleneckKind.HIGH_VARIANCE
    evidence: EndpointEvidence


class Regression(BottleneckFields):
    kind: Literal[BottleneckKind.REGRESSION] = BottleneckKind.REGRESSION
    evidence: RegressionEvidence


class ResourceSaturation(BottleneckFields):
    kind: Literal[BottleneckKind.RESOURCE] = BottleneckKind.RESOURCE
    evidence: ResourceEvidence


class CapacityExhaustion(BottleneckFields):
    kind: Literal[BottleneckKind.CAPACITY] = BottleneckKind.CAPACITY
    evidence: CapacityEvidence


class SlowDependency(BottleneckFields):
    kind: Literal[BottleneckKind.DEPENDENCY] = BottleneckKind.DEPENDENCY
    evidence: DependencyEvidence


Bottleneck = Annotated[
    SlowEndpoint
    | HighErrorRate
    | HighVariance
    | Regression
    | ResourceSaturation
    | CapacityExhaustion
    | SlowDependency,
    Field(discriminator="kind"),
]
"""One measured bottleneck; ``kind`` says which evidence it carries."""


class BottleneckReport(ResponseSchema):
    window: MeasurementWindow
    bottlenecks: list[Bottleneck] = Field(description="Worst first.")
    note: str | None


class Recommendation(ResponseSchema):
    category: RecommendationCategory
    priority: Severity
    title: str
    description: str
    service: str | None = Field(description="The endpoint's service, as its bottleneck's.")
    target: str
    bottleneck: BottleneckKind
    evidence: dict[str, Any]


class RecommendationReport(ResponseSchema):
    window: MeasurementWindow
    recommendations: list[Recommendation] = Field(description="Most urgent first.")
    note: str | None


class PeriodFigures(ResponseSchema):
    start: datetime
    end: datetime
    requests: int
    median_ms: float | None
    p95_ms: float | None
    error_rate: float | None
    p95_improvement: float | None = Field(
        description="Relative p95 reduction against the period before (0.1 = 10% faster)."
    )


class EndpointTrend(ResponseSchema):
    service: str
    method: str
    route: str
    periods: list[PeriodFigures]


class PerformanceTrends(ResponseSchema):
    period: TrendPeriod
    overall: list[PeriodFigures] = Field(description="Oldest first; the last ends now.")
    endpoints: list[EndpointTrend]
    improvement: float | None = Field(
        description="p95 reduction of the last period against the one before."
    )
    improvement_target: float = Field(
        description="The objectives' quarterly improvement, as a share (0.1 = 10%)."
    )
    target_met: bool | None = Field(description="Quarters only: improvement over the target.")
    note: str | None


class SloCriterion(ResponseSchema):
    """One success criterion; its target is the configured objective."""

    name: str
    description: str
    target: float = Field(description="From the objectives settings.")
    unit: str = Field(description="What measured is, e.g. 'ms (p95)' or 'hours (median)'.")
    comparison: str = Field(description="How measured compares to target to be met: < or >.")
    measured: float | None
    window: MeasurementWindow
    met: bool | None
    detail: str


class SloReport(ResponseSchema):
    checked_at: datetime
    met: bool | None = Field(description="Every criterion met; null when one cannot be told.")
    criteria: list[SloCriterion]


class ServiceSummary(ResponseSchema):
    """A service whose requests are stored, and how it has been doing for a day."""

    service: str
    first_seen: datetime = Field(description="Start of the oldest minute or hour stored.")
    last_seen: datetime = Field(description="Start of the newest minute stored.")
    requests_24h: int
    p95_ms_24h: float | None
    error_rate_24h: float | None = Field(description="Share of 5xx responses in 24 hours.")
    sources: list[RequestSource] = Field(description="How its figures arrived.")


class ServiceReport(ResponseSchema):
    services: list[ServiceSummary] = Field(description="By name.")
