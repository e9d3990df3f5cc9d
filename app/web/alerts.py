"""The alerts page (developers and admins): firing and recent alerts, acknowledging one,
and maintenance windows, opened and ended. The AlertDesk calls of the alert endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse

from app.api.deps import AlertDeskDep, MonitorDep
from app.api.v1.endpoints.alerts import AlertId, WindowId
from app.schemas.alerts import AlertQuery, MaintenanceWindowCreate
from app.vocabulary.alerts import RULE_NAMES, AlertState
from app.web.forms import split_list, validated
from app.web.pages import page, page_router
from app.web.sessions import StaffSender, StaffVisitor

router = page_router()
RECENT: Final = 50
FIRING: Final = 200
WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_BACK: Final = "/alerts"


@router.get("/alerts")
async def alerts_page(
    request: Request, visitor: StaffVisitor, desk: AlertDeskDep, monitor: MonitorDep
) -> Response:
    """Firing alerts, the most recent ones, and the maintenance windows."""
    firing = await desk.search(AlertQuery(state=AlertState.FIRING, limit=FIRING))
    recent = await desk.search(AlertQuery(limit=RECENT))
    return page(
        request,
        visitor,
        "alerts.html",
        {
            "firing": firing,
            "recent": recent,
            "windows": await desk.windows(),
            "rules": RULE_NAMES,
            "weekdays": WEEKDAYS,
            "components": sorted(target.name for target in monitor.targets),
        },
    )


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: AlertId, sender: StaffSender, desk: AlertDeskDep) -> Response:
    """Acknowledges an alert: no more repeats of it."""
    await desk.acknowledge(await desk.get(alert_id), sender.user)
    return RedirectResponse(_BACK, status_code=303)


def _utc(moment: str) -> str | None:
    """A ``datetime-local`` field, which has no offset, read as UTC (the form says so)."""
    if not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment  # the schema names the mistake
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


@router.post("/maintenance-windows")
async def open_window(
    request: Request,
    sender: StaffSender,
    desk: AlertDeskDep,
    name: Annotated[str, Form(max_length=200)] = "",
    shape: Annotated[str, Form(max_length=10)] = "once",
    starts_at: Annotated[str, Form(max_length=40)] = "",
    ends_at: Annotated[str, Form(max_length=40)] = "",
    start_time: Annotated[str, Form(max_length=10)] = "",
    duration_minutes: Annotated[str, Form(max_length=10)] = "",
    components: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Opens a one-off or weekly maintenance window."""
    form = await request.form()
    data: dict[str, Any] = {
        "name": name,
        "components": split_list(components),
        "rules": form.getlist("rules"),
    }
    if shape == "weekly":
        data["recurrence"] = {
            "weekdays": form.getlist("weekdays"),
            "start": start_time,
            "duration_minutes": duration_minutes,
        }
    else:
        data |= {"starts_at": _utc(starts_at), "ends_at": _utc(ends_at)}
    await desk.open_window(validated(MaintenanceWindowCreate, data), sender.user)
    return RedirectResponse(_BACK, status_code=303)


@router.post("/maintenance-windows/{window_id}/end")
async def end_window(window_id: WindowId, _: StaffSender, desk: AlertDeskDep) -> Response:
    """Ends a stored maintenance window now."""
    await desk.end_window(window_id)
    return RedirectResponse(_BACK, status_code=303)
