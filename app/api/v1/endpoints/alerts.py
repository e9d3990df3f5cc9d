"""Alert endpoints (developers and admins): alerts, channels, maintenance windows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.api.deps import AlertDeskDep, StaffUser
from app.api.v1.prefix import API_V1
from app.schemas.alerts import (
    AlertDetail,
    AlertPage,
    AlertQuery,
    AlertRead,
    ChannelRead,
    DeliveryRead,
    MaintenanceWindowCreate,
    MaintenanceWindowRead,
    TestNotification,
)
from app.schemas.base import RowId

router = APIRouter(prefix=f"{API_V1}/maintenance", tags=["alerts"])
AlertId = Annotated[RowId, Path(description="The alert's id.")]
WindowId = Annotated[RowId, Path(description="The stored maintenance window's id.")]


@router.get("/alerts", response_model=AlertPage)
async def list_alerts(
    query: Annotated[AlertQuery, Query()], _: StaffUser, desk: AlertDeskDep
) -> AlertPage:
    """Alerts, newest first; filter by state, rule and component."""
    return await desk.search(query)


@router.get("/alerts/channels", response_model=list[ChannelRead])
async def list_channels(_: StaffUser, desk: AlertDeskDep) -> list[ChannelRead]:
    """The configured notification channels, URLs masked."""
    return desk.channel_list()


@router.post("/alerts/test", response_model=DeliveryRead)
async def send_test(body: TestNotification, _: StaffUser, desk: AlertDeskDep) -> DeliveryRead:
    """Sends a test notification to one channel now and says how it went."""
    return await desk.test(body.channel)


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
async def read_alert(alert_id: AlertId, _: StaffUser, desk: AlertDeskDep) -> AlertDetail:
    """One alert with its notifications."""
    return await desk.detail(await desk.get(alert_id))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRead)
async def acknowledge_alert(alert_id: AlertId, user: StaffUser, desk: AlertDeskDep) -> AlertRead:
    """Acknowledges an alert: no more repeats of it."""
    return await desk.acknowledge(await desk.get(alert_id), user)


@router.get("/maintenance-windows", response_model=list[MaintenanceWindowRead])
async def list_windows(_: StaffUser, desk: AlertDeskDep) -> list[MaintenanceWindowRead]:
    """Configured and stored maintenance windows, with whether each is open now."""
    return await desk.windows()


@router.post(
    "/maintenance-windows",
    response_model=MaintenanceWindowRead,
    status_code=status.HTTP_201_CREATED,
)
async def open_window(
    body: MaintenanceWindowCreate, user: StaffUser, desk: AlertDeskDep
) -> MaintenanceWindowRead:
    """Opens a maintenance window (one-off or weekly)."""
    return await desk.open_window(body, user)


@router.post("/maintenance-windows/{window_id}/end", response_model=MaintenanceWindowRead)
async def end_window(
    window_id: WindowId, _: StaffUser, desk: AlertDeskDep
) -> MaintenanceWindowRead:
    """Ends a stored maintenance window now."""
    return await desk.end_window(window_id)
