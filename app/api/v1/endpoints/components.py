"""Component endpoints (developers and admins): where each stands, and one's history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import ClockDep, SessionDep, StaffUser
from app.api.v1.prefix import API_V1
from app.schemas.components import ComponentHistory, ComponentPage, ComponentQuery, HistoryRange
from app.services.health import component_history, list_components

router = APIRouter(prefix=f"{API_V1}/maintenance", tags=["components"])
ComponentName = Annotated[str, Path(min_length=1, max_length=100, description="Its name.")]
RangeQuery = Annotated[HistoryRange, Query(alias="range", description="How far back.")]


@router.get("/components", response_model=ComponentPage)
async def components(
    query: Annotated[ComponentQuery, Query()], _: StaffUser, session: SessionDep
) -> ComponentPage:
    """Every component's status now, problems first, with the counts by status."""
    return await list_components(session, query)


@router.get("/components/{name}", response_model=ComponentHistory)
async def component(
    name: ComponentName,
    _: StaffUser,
    session: SessionDep,
    clock: ClockDep,
    history_range: RangeQuery = HistoryRange.DAY,
) -> ComponentHistory:
    """One component's latency and status over a range, its incidents and last checks."""
    return await component_history(session, name, history_range, now=clock())
