"""The public status page (``status_page_enabled``): ``/status``, its Atom feed and one
SVG badge per public component — for anyone, no sign-in, and 404 while it is off.

Each route makes one call of ``StatusPage`` (the alerts domain's public read of health,
incidents and maintenance), whose answers hold nothing but what the public may see, and
renders it with the pages' templating. The page runs no script at all and its one
stylesheet is served here, so the pages' strict Content-Security-Policy holds; its frame
is its own (``status/base.html``), without the dashboard's navigation. Answers may be
cached for a short while: they are the same for everyone.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request, Response

from app.api.deps import ClockDep, MonitorDep, SessionDep, SettingsDep
from app.core.errors import NotFound
from app.services.alerts import StatusPage
from app.services.issues import ResolutionTargets
from app.web.templating import TEMPLATES_DIR, environment, render

router = APIRouter(include_in_schema=False)

STYLESHEET: Final = TEMPLATES_DIR / "status" / "style.css"
STYLE_VERSION: Final = hashlib.sha256(STYLESHEET.read_bytes()).hexdigest()[:12]
SHORT_CACHE: Final = "public, max-age=30"
# Text a comment may hold that XML 1.0 may not: left out of the feed so that it parses.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A badge or a feed carries no script, style or link to load.
_NOTHING_TO_LOAD: Final = "default-src 'none'; frame-ancestors 'none'"


async def switched_on(settings: SettingsDep) -> None:
    """404, as for any unknown path, while the status page is off."""
    if not settings.status_page_enabled:
        raise NotFound("Not Found")


SwitchedOn = Depends(switched_on)


async def status_page(
    _: Annotated[None, SwitchedOn],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    monitor: MonitorDep,
) -> StatusPage:
    """The status page of this request, as of the app's clock."""
    return StatusPage(
        session,
        targets=monitor.targets,
        configured_windows=monitor.windows,
        resolution_targets=ResolutionTargets(hours=settings.issue_resolution_target_hours),
        now=clock(),
    )


StatusPageDep = Annotated[StatusPage, Depends(status_page)]


def xml_text(text: str) -> str:
    """``text`` without the characters an XML document cannot hold."""
    return _NOT_XML.sub("", text)


@router.get("/status")
async def status(request: Request, page: StatusPageDep) -> Response:
    """Where the public components stand, their uptime, incidents and maintenance."""
    return render(
        request,
        "status/page.html",
        {"status": await page.status(), "style_version": STYLE_VERSION},
        headers={"Cache-Control": SHORT_CACHE},
    )


@router.get("/status/style.css", dependencies=[SwitchedOn])
async def stylesheet() -> Response:
    """The status page's own stylesheet (linked with its digest, so kept long)."""
    return Response(
        STYLESHEET.read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get("/status/feed.atom")
async def feed(request: Request, page: StatusPageDep) -> Response:
    """An Atom 1.0 feed of the incidents and their public updates."""
    answer = await page.status()
    incidents = answer.active_incidents + answer.recent_incidents
    updated = max((i.updated_at for i in incidents), default=answer.checked_at)
    document = environment.get_template("status/feed.atom").render(
        {
            "page_url": str(request.url_for("status")),
            "feed_url": str(request.url_for("feed")),
            "updated": updated,
            "incidents": incidents,
            "xml": xml_text,
        }
    )
    return Response(
        document,
        media_type="application/atom+xml",
        headers={"Cache-Control": SHORT_CACHE, "Content-Security-Policy": _NOTHING_TO_LOAD},
    )


@router.get("/status/badge/{component}.svg")
async def badge(component: str, page: StatusPageDep) -> Response:
    """An SVG badge of one public component: its status and 30-day uptime."""
    document = environment.get_template("status/badge.svg").render(
        {"badge": await page.badge(component)}
    )
    return Response(
        document,
        media_type="image/svg+xml",
        headers={"Cache-Control": SHORT_CACHE, "Content-Security-Policy": _NOTHING_TO_LOAD},
    )
