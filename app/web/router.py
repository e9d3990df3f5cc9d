"""Every page router, and the static files they link, installed on the app in one call."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.web import alerts, components, issues, overview, performance, signin
from app.web.templating import STATIC_DIR, STATIC_PREFIX

routers: tuple[APIRouter, ...] = (
    signin.router,
    overview.router,
    components.router,
    performance.router,
    issues.router,
    alerts.router,
)


class VersionedStaticFiles(StaticFiles):
    """Static files a browser may keep: every link to them carries their digest."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install_pages(app: FastAPI) -> None:
    """Adds the pages and ``/static`` to ``app``."""
    for router in routers:
        app.include_router(router)
    app.mount(STATIC_PREFIX, VersionedStaticFiles(directory=STATIC_DIR), name="static")
