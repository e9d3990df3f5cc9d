"""The performance pages (developers and admins), per service or for every one.

``/performance`` is the analysis of a window: the overall figures with their change and
the endpoint table, sortable by any of its columns. ``/performance/insights`` holds what
reads weeks and quarters of history — bottlenecks with their evidence, the
recommendations, weekly and quarterly trends with the improvement flag — and is pulled
into the first page by htmx once it has shown (or opened as a page of its own without
JavaScript), so the endpoint table never waits on a quarter of history.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Query, Request, Response
from pydantic import BeforeValidator

from app.api.deps import AnalyzerDep
from app.api.v1.endpoints.maintenance import Days
from app.schemas.performance import EndpointFigures, TrendPeriod
from app.vocabulary.performance import ServiceName
from app.web.pages import page, page_router
from app.web.sessions import StaffVisitor

router = page_router()
WINDOWS: Final = {1: "1 hour", 24: "24 hours", 168: "7 days", 720: "30 days"}
SortKey = Literal["requests", "p95_ms", "p99_ms", "error_rate", "share_of_time", "route"]
SORTS: Final[dict[str, str]] = {
    "route": "Endpoint",
    "requests": "Requests",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "error_rate": "5xx rate",
    "share_of_time": "Share of time",
}
# A form's "every service" sends an empty value: that is no service named.
Service = Annotated[
    ServiceName | None,
    BeforeValidator(lambda value: value or None),
    Query(description="One service; none: every one."),
]
Hours = Annotated[int, Query(ge=1, le=2160, description="Window: the last N hours.")]


def _sorted(
    endpoints: list[EndpointFigures], key: SortKey, ascending: bool
) -> list[EndpointFigures]:
    """The service's endpoint figures in the order asked for; unmeasured figures last."""
    if key == "route":
        return sorted(
            endpoints, key=lambda e: (e.service, e.route, e.method), reverse=not ascending
        )
    measured = [e for e in endpoints if getattr(e, key) is not None]
    unmeasured = [e for e in endpoints if getattr(e, key) is None]
    return [*sorted(measured, key=lambda e: getattr(e, key), reverse=not ascending), *unmeasured]


@router.get("/performance")
async def performance_page(
    request: Request,
    visitor: StaffVisitor,
    analyzer: AnalyzerDep,
    service: Service = None,
    hours: Hours = 24,
    sort: SortKey = "share_of_time",
    order: Literal["asc", "desc"] = "desc",
) -> Response:
    """The window's figures, overall and per endpoint."""
    services = (service,) if service else ()
    known = await analyzer.service_names()
    analysis = await analyzer.analysis(hours, services=services)
    return page(
        request,
        visitor,
        "performance.html",
        {
            "known": known,
            "service": service,
            "hours": hours,
            "windows": WINDOWS,
            "analysis": analysis,
            "endpoints": _sorted(analysis.endpoints, sort, order == "asc"),
            "sort": sort,
            "order": order,
            "sorts": SORTS,
        },
    )


@router.get("/performance/insights")
async def insights(
    request: Request,
    visitor: StaffVisitor,
    analyzer: AnalyzerDep,
    service: Service = None,
    days: Days = 7,
) -> Response:
    """Bottlenecks, recommendations and trends; a fragment for htmx, else a page."""
    services = (service,) if service else ()
    context = {
        "service": service,
        "days": days,
        "bottlenecks": await analyzer.bottlenecks(days, services=services),
        "recommendations": await analyzer.recommendations(days, services=services),
        "weekly": await analyzer.trends(TrendPeriod.WEEK, services=services),
        "quarterly": await analyzer.trends(TrendPeriod.QUARTER, services=services),
    }
    fragment = bool(request.headers.get("hx-request"))
    template = "performance_insights.html" if fragment else "performance_insights_page.html"
    return page(request, visitor, template, context)
