"""``GET /metrics``: the Prometheus exposition of this process's request metrics, of
the last status of every monitored component and of its background tasks' crashes.

Open like ``/healthz`` by default, as Prometheus scrapes without credentials; with
``WATCHKEEPER_METRICS_PUBLIC=false`` it needs a developer's or admin's bearer token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import SessionDep, SettingsDep, StoreDep, get_staff_user, user_from_request
from app.services.performance.exposition import exposition
from app.services.performance.flusher import RequestTracking
from app.services.supervisor import Supervisor

router = APIRouter(tags=["probes"])


async def scrape_allowed(request: Request, settings: SettingsDep, store: StoreDep) -> None:
    """Lets anyone scrape unless the settings close /metrics to staff."""
    if not settings.metrics_public:
        await get_staff_user(await user_from_request(request, store))


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        401: {"description": "With metrics_public=false: no valid bearer token."},
        403: {"description": "With metrics_public=false: the caller is not staff."},
    },
)
async def metrics(
    request: Request, session: SessionDep, _: Annotated[None, Depends(scrape_allowed)]
) -> Response:
    """Request counts and latency histograms per service and route template; component
    statuses; background task crashes."""
    tracking: RequestTracking = request.app.state.request_tracking
    supervisor: Supervisor = request.app.state.supervisor
    body = await exposition(session, tracking.totals, supervisor.failures)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
