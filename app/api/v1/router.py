"""Everything under ``/api/v1``.

Each router carries its full prefix and is included without one: the matched route's
``path`` is then the whole template (``/api/v1/users/me``) on every FastAPI version,
which the access log and the request metrics read instead of matching paths again.
"""

from fastapi import APIRouter

from app.api.v1.endpoints import alerts, auth, components, ingest, maintenance, users

routers: tuple[APIRouter, ...] = (
    auth.router,
    users.router,
    maintenance.router,
    alerts.router,
    components.router,
    ingest.router,
)
