"""A component's page (developers and admins): its status and history over a range, its
incidents and its last checks — the answer of ``GET /api/v1/maintenance/components/{name}``."""

from __future__ import annotations

from fastapi import Request, Response

from app.api.deps import ClockDep, SessionDep
from app.api.v1.endpoints.components import ComponentName, RangeQuery
from app.schemas.components import HistoryRange
from app.services.health import component_history
from app.web.pages import page, page_router
from app.web.sessions import StaffVisitor

router = page_router()


@router.get("/components/{name}")
async def component_page(
    request: Request,
    name: ComponentName,
    visitor: StaffVisitor,
    session: SessionDep,
    clock: ClockDep,
    history_range: RangeQuery = HistoryRange.DAY,
) -> Response:
    """One component over 24 hours, 7, 30 or 90 days."""
    history = await component_history(session, name, history_range, now=clock())
    return page(
        request,
        visitor,
        "component.html",
        {"history": history, "ranges": list(HistoryRange)},
    )
