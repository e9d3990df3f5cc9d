"""The performance API's answers: analysis, bottlenecks, recommendations, trends and SLOs.

Durations are milliseconds, rates are shares in [0, 1], changes are relative
(``0.25`` = 25% more than the previous window). A figure that cannot be measured (no
requests, no history) is null, and ``note`` says why.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from app.schemas.base import ResponseSchema
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


class Window(ResponseSchema):
    start: datetime
    end: datetime
    hours: float


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
        description="Relative change of each figure against the previous window."
    )


class EndpointFigures(RequestFigures):
    method: str
    route: str


class ResponseTimeSlo(ResponseSchema):
    target_ms: float
    target_share: float
    share_within_target: float | None
    p95_ms: float | None
    met: bool | None


class PerformanceAnalysis(ResponseSchema):
    window: Window
    previous_window: Window
    overall: RequestFigures
    endpoints: list[EndpointFigures] = Field(description="Busiest (most total time) first.")
    slo: ResponseTimeSlo
    note: str | None


class Bottleneck(ResponseSchema):
    kind: BottleneckKind
    severity: Severity
    target: str = Field(description="The endpoint (METHOD route), component or resource.")
    metric: str
    value: float
    threshold: float
    message: str
    evidence: dict[str, Any]


class BottleneckReport(ResponseSchema):
    window: Window
    bottlenecks: list[Bottleneck] = Field(description="Worst first.")
    note: str | None


class Recommendation(ResponseSchema):
    category: RecommendationCategory
    priority: Severity
    title: str
    description: str
    target: str
    bottleneck: BottleneckKind
    evidence: dict[str, Any]


class RecommendationReport(ResponseSchema):
    window: Window
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
    improvement_target: float
    target_met: bool | None = Field(description="Quarters only: the spec's > 10% a quarter.")
    note: str | None


class SloCriterion(ResponseSchema):
    name: str
    description: str
    target: float
    unit: str
    comparison: str = Field(description="How measured compares to target to be met: < or >.")
    measured: float | None
    window: Window
    met: bool | None
    detail: str


class SloReport(ResponseSchema):
    checked_at: datetime
    met: bool | None = Field(description="Every criterion met; null when one cannot be told.")
    criteria: list[SloCriterion]
