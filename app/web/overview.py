"""The overview (developers and admins): is anything down, how each service is doing, the
issue desk and the alerts, and the four success criteria — refreshed by htmx every few
seconds (``/overview/live`` is the same page without its frame).

Every figure is a service's answer: components and their 90 days of uptime from health,
each service's last hour against the hour before from ``PerformanceAnalyzer.analysis``
(the worst endpoints are that answer's endpoints, ordered by their 5xx rate), the firing
alerts; and, refreshed on their own every minute (``/overview/objectives``), the desk's
statistics and ``/slo``. A person who is not staff is sent to the issues they reported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import AlertDeskDep, AnalyzerDep, ClockDep, SessionDep, TrackerDep
from app.schemas.alerts import AlertQuery
from app.schemas.components import ComponentQuery
from app.schemas.issues import StatisticsQuery
from app.schemas.performance import EndpointFigures, PerformanceAnalysis
from app.services.alerts.desk import AlertDesk
from app.services.health import daily_uptime, list_components
from app.services.performance.performance_analyzer import PerformanceAnalyzer
from app.vocabulary.alerts import AlertState
from app.vocabulary.health import ComponentStatus
from app.web.forms import from_fields
from app.web.pages import USER_HOME, page, page_router
from app.web.sessions import StaffVisitor, Visitor

router = page_router()
UPTIME_DAYS: Final = 90
COMPONENTS_SHOWN: Final = 25
WORST_ENDPOINTS: Final = 5
FIRING_SHOWN: Final = 10
SERVICE_WINDOW_HOURS: Final = 1
REFRESH_SECONDS: Final = 5
# The desk's figures and the success criteria read weeks to quarters of history and move
# slowly: refreshed on their own, less often, so the live part never waits on them.
OBJECTIVES_SECONDS: Final = 60


def worst_endpoints(analyses: dict[str, PerformanceAnalysis]) -> list[EndpointFigures]:
    """The endpoints with the highest 5xx rate in the analyses, as they measured them."""
    failing = [
        endpoint
        for analysis in analyses.values()
        for endpoint in analysis.endpoints
        if endpoint.error_rate
    ]
    failing.sort(key=lambda e: (-(e.error_rate or 0.0), -e.requests, e.service, e.route))
    return failing[:WORST_ENDPOINTS]


async def _figures(
    request: Request,
    session: AsyncSession,
    now: datetime,
    analyzer: PerformanceAnalyzer,
    desk: AlertDesk,
) -> dict[str, Any]:
    """What the live part of the overview shows, as the services answer it now."""
    query = from_fields(
        ComponentQuery,
        [*request.query_params.multi_items(), ("limit", str(COMPONENTS_SHOWN))],
    )
    components = await list_components(session, query)
    uptime = await daily_uptime(
        session, days=UPTIME_DAYS, now=now, components=[c.name for c in components.items]
    )
    analyses = {
        service: await analyzer.analysis(SERVICE_WINDOW_HOURS, services=(service,))
        for service in await analyzer.service_names()
    }
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "offset" and v]
    return {
        "components": components,
        "component_query": query,
        "kept": kept,
        "statuses": list(ComponentStatus),
        "uptime": uptime,
        "uptime_days": UPTIME_DAYS,
        "analyses": analyses,
        "worst": worst_endpoints(analyses),
        "service_hours": SERVICE_WINDOW_HOURS,
        "firing": await desk.search(AlertQuery(state=AlertState.FIRING, limit=FIRING_SHOWN)),
        "refresh_seconds": REFRESH_SECONDS,
        "objectives_seconds": OBJECTIVES_SECONDS,
        "live_query": request.url.query,
    }


@router.get("/")
async def overview(
    request: Request,
    visitor: Visitor,
    session: SessionDep,
    clock: ClockDep,
    analyzer: AnalyzerDep,
    desk: AlertDeskDep,
) -> Response:
    """The whole picture, for staff; a user's home is the issues they reported."""
    if not visitor.is_staff:
        return RedirectResponse(USER_HOME, status_code=303)
    context = await _figures(request, session, clock(), analyzer, desk)
    return page(request, visitor, "overview.html", context)


@router.get("/overview/live")
async def overview_live(
    request: Request,
    visitor: StaffVisitor,
    session: SessionDep,
    clock: ClockDep,
    analyzer: AnalyzerDep,
    desk: AlertDeskDep,
) -> Response:
    """The overview's content without its frame: what the page's refresh swaps in."""
    context = await _figures(request, session, clock(), analyzer, desk)
    return page(request, visitor, "overview_live.html", context)


@router.get("/overview/objectives")
async def objectives(
    request: Request, visitor: StaffVisitor, analyzer: AnalyzerDep, tracker: TrackerDep
) -> Response:
    """The desk's figures and the four success criteria; a fragment for htmx, else a page."""
    context = {
        "issues": await tracker.statistics(StatisticsQuery()),
        "slo": await analyzer.slo(),
        "objectives_seconds": OBJECTIVES_SECONDS,
    }
    fragment = bool(request.headers.get("hx-request"))
    template = "overview_objectives.html" if fragment else "overview_objectives_page.html"
    return page(request, visitor, template, context)
