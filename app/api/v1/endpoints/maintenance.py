"""The spec's ``/api/v1/maintenance`` endpoints: thin — dependencies in, one call, a schema out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from app.api.deps import (
    AnalyzerDep,
    CurrentUser,
    IssueForReader,
    MonitorDep,
    SessionDep,
    StaffUser,
    TrackerDep,
)
from app.api.v1.prefix import API_V1
from app.schemas.health import CollectedSweep, HealthReport
from app.schemas.issues import (
    CommentCreate,
    CommentRead,
    IssueCreate,
    IssueCreated,
    IssueDetail,
    IssuePage,
    IssueQuery,
    IssueRead,
    IssueStatistics,
    IssueUpdate,
    StatisticsQuery,
    StatusChange,
)
from app.schemas.performance import (
    BottleneckReport,
    PerformanceAnalysis,
    PerformanceTrends,
    RecommendationReport,
    ServiceReport,
    SloReport,
    TrendPeriod,
)
from app.services.health.health_json import HEALTH_JSON, health_json
from app.vocabulary.performance import ServiceName

router = APIRouter(prefix=f"{API_V1}/maintenance", tags=["maintenance"])


# Health ------------------------------------------------------------------------------


@router.get(
    "/health",
    response_model=HealthReport,
    responses={200: {"content": {HEALTH_JSON: {}}}},
)
async def health(
    request: Request,
    _: StaffUser,
    session: SessionDep,
    monitor: MonitorDep,
    hours: Annotated[int, Query(ge=1, le=720, description="Trend window.")] = 24,
) -> HealthReport | JSONResponse:
    """The latest sweep of every component with its age, and the trend of the last
    ``hours`` hours; never waits for a sweep (see ``SystemMonitor.latest``).

    With ``Accept: application/health+json`` the sweep answers in the IETF draft format.
    """
    if HEALTH_JSON in request.headers.get("accept", ""):
        body = health_json(await monitor.latest(session), version=request.app.version)
        return JSONResponse(body, media_type=HEALTH_JSON)
    return await monitor.report(session, hours)


@router.post("/metrics/collect", response_model=CollectedSweep)
async def collect_metrics(_: StaffUser, monitor: MonitorDep) -> CollectedSweep:
    """Runs every check now and stores the result (developers)."""
    collected = await monitor.collect(source="api")
    assert collected is not None  # only a slotted sweep can be skipped
    return collected


# Issues ------------------------------------------------------------------------------


@router.post("/issues", response_model=IssueCreated, status_code=status.HTTP_201_CREATED)
async def create_issue(body: IssueCreate, user: CurrentUser, tracker: TrackerDep) -> IssueCreated:
    """Reports a bug, requests a feature, opens a support ticket or an incident."""
    return await tracker.create(body, user)


@router.get("/issues", response_model=IssuePage)
async def list_issues(
    query: Annotated[IssueQuery, Query()], user: CurrentUser, tracker: TrackerDep
) -> IssuePage:
    """Issues the caller may see, filtered, sorted and paged."""
    return await tracker.search(query, user)


# Declared before /issues/{issue_id} so "statistics" is never read as an id.
@router.get("/issues/statistics", response_model=IssueStatistics)
async def issue_statistics(
    query: Annotated[StatisticsQuery, Query()], _: StaffUser, tracker: TrackerDep
) -> IssueStatistics:
    """Counts, resolution times against target, backlog and weekly flow (developers)."""
    return await tracker.statistics(query)


@router.get("/issues/{issue_id}", response_model=IssueDetail)
async def read_issue(issue: IssueForReader, user: CurrentUser, tracker: TrackerDep) -> IssueDetail:
    """One issue with its comments and history."""
    return await tracker.detail(issue, user)


@router.patch("/issues/{issue_id}", response_model=IssueRead)
async def update_issue(
    issue: IssueForReader, body: IssueUpdate, user: CurrentUser, tracker: TrackerDep
) -> IssueRead:
    """Edits fields, labels, the assignee or the waiting-on-reporter flag."""
    return await tracker.update(issue, body, user)


@router.patch("/issues/{issue_id}/status", response_model=IssueRead)
async def change_issue_status(
    issue: IssueForReader, body: StatusChange, user: CurrentUser, tracker: TrackerDep
) -> IssueRead:
    """Moves the issue along the support workflow."""
    return await tracker.change_status(issue, body, user)


@router.post(
    "/issues/{issue_id}/comments", response_model=CommentRead, status_code=status.HTTP_201_CREATED
)
async def add_comment(
    issue: IssueForReader, body: CommentCreate, user: CurrentUser, tracker: TrackerDep
) -> CommentRead:
    """Adds a comment; developers may mark it internal."""
    return await tracker.comment(issue, body, user)


# Performance -------------------------------------------------------------------------

Days = Annotated[int, Query(ge=1, le=90, description="Window: the last N x 24 hours, ending now.")]
MAX_SERVICES = 50
Services = Annotated[
    tuple[ServiceName, ...],
    Query(
        alias="service",
        max_length=MAX_SERVICES,
        description="Only these services (repeat the parameter for several); none: every one.",
    ),
]


@router.get("/performance/analysis", response_model=PerformanceAnalysis)
async def performance_analysis(
    _: StaffUser,
    analyzer: AnalyzerDep,
    hours: Annotated[
        int,
        Query(ge=1, le=2160, description="Window: the last N x 60 minutes, ending now."),
    ] = 24,
    service: Services = (),
) -> PerformanceAnalysis:
    """Response times, volume and error rates, overall and per endpoint, with their change."""
    return await analyzer.analysis(hours, services=service)


@router.get("/performance/bottlenecks", response_model=BottleneckReport)
async def performance_bottlenecks(
    _: StaffUser,
    analyzer: AnalyzerDep,
    days: Days = 7,
    service: Services = (),
) -> BottleneckReport:
    """Slow, failing, regressed and erratic endpoints; saturated hosts; slow dependencies."""
    return await analyzer.bottlenecks(days, services=service)


@router.get("/performance/recommendations", response_model=RecommendationReport)
async def performance_recommendations(
    _: StaffUser,
    analyzer: AnalyzerDep,
    days: Days = 7,
    service: Services = (),
) -> RecommendationReport:
    """What to do about each bottleneck, with the figures that call for it."""
    return await analyzer.recommendations(days, services=service)


@router.get("/performance/trends", response_model=PerformanceTrends)
async def performance_trends(
    _: StaffUser,
    analyzer: AnalyzerDep,
    period: TrendPeriod = TrendPeriod.WEEK,
    service: Services = (),
) -> PerformanceTrends:
    """Figures per week or quarter and the improvement between them."""
    return await analyzer.trends(period, services=service)


@router.get("/performance/services", response_model=ServiceReport)
async def performance_services(_: StaffUser, analyzer: AnalyzerDep) -> ServiceReport:
    """Every service measured: first and last seen, its last day's figures, its sources."""
    return await analyzer.services()


@router.get("/slo", response_model=SloReport)
async def service_level_objectives(
    _: StaffUser,
    analyzer: AnalyzerDep,
    service: Services = (),
) -> SloReport:
    """The spec's four success criteria: target, measured value, window and whether met."""
    return await analyzer.slo(services=service)
