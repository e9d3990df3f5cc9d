"""The application factory: ``uvicorn app.main:app`` or ``watchkeeper serve``."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from watchkeeper_agent import WatchkeeperMiddleware

from app.api import metrics, otlp, probes
from app.api.deps import get_current_user, get_store
from app.api.errors import declare_errors, on_validation_error
from app.api.v1.endpoints import ingest
from app.api.v1.router import routers as api_v1_routers
from app.core.body_limit import BodySizeLimitMiddleware
from app.core.config import LogFormat, Settings, get_settings
from app.core.errors import StoreUnavailable, WatchkeeperError
from app.core.logging import AccessLogMiddleware, setup_logging
from app.core.security_headers import SecurityHeadersMiddleware
from app.core.text_guard import TextGuardMiddleware
from app.db import migrate
from app.db.base import utcnow
from app.db.store import STORE_OUTAGES, Store, is_outage, outage_cause
from app.services.accounts import TokenCache
from app.services.bootstrap import Bootstrap, ensure_admin
from app.services.health.loop import run_loop
from app.services.login_throttle import LoginThrottle
from app.services.monitoring import build_monitoring
from app.services.performance import AgentIngest, OtlpReceiver
from app.services.performance.flusher import RequestTracking
from app.services.supervisor import Supervisor
from app.web.router import install_pages
from app.web.status import router as status_page_router

logger = logging.getLogger("watchkeeper")


async def prepare_store(store: Store, settings: Settings) -> Bootstrap | None:
    """Migrates the store and creates the first admin; idempotent on every start."""
    await migrate.upgrade(store)
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    async with store.unit_of_work() as session:
        return await ensure_admin(
            session, username=settings.admin_username, configured_token=admin_token
        )


def announce(bootstrap: Bootstrap, settings: Settings) -> None:
    """Shows the first admin's token once, on stdout and never in the log.

    With ``log_format=json`` it is one JSON object, like every other line the process writes.
    """
    me = f"http://{settings.host}:{settings.port}/api/v1/users/me"
    if settings.log_format is LogFormat.JSON:
        fields = {"event": "admin_created", "username": bootstrap.username, "try": me}
        if bootstrap.token is not None:
            fields["token"] = bootstrap.token
        message = json.dumps(fields)
    elif bootstrap.token is None:
        message = f"Created admin {bootstrap.username!r} with WATCHKEEPER_ADMIN_TOKEN."
    else:
        message = (
            f"Created admin {bootstrap.username!r}. Its API token, shown only this once:\n\n"
            f"    {bootstrap.token}\n\n"
            f'Try: curl -H "Authorization: Bearer <token>" {me}'
        )
    print(message, file=sys.stdout, flush=True)


def _error_response(error: WatchkeeperError) -> JSONResponse:
    return JSONResponse(
        {"detail": error.detail}, status_code=error.status_code, headers=error.headers
    )


async def _on_watchkeeper_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, WatchkeeperError)
    return _error_response(error)


async def _on_store_error(request: Request, error: Exception) -> JSONResponse:
    if not is_outage(error):
        raise error
    logger.error("store unavailable during %s: %s", request.url.path, outage_cause(error))
    return _error_response(StoreUnavailable())


def create_app(settings: Settings | None = None) -> FastAPI:
    """A Watchkeeper application bound to ``settings`` (read from the environment if None)."""
    settings = settings or get_settings()
    setup_logging(settings)
    store = Store(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeout=settings.database_timeout_seconds,
    )

    monitoring = build_monitoring(store, settings)
    monitor, dispatcher = monitoring.monitor, monitoring.dispatcher
    tracking = RequestTracking.from_settings(store, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bootstrap = await prepare_store(store, settings)
        if bootstrap is not None:
            announce(bootstrap, settings)
        supervisor: Supervisor = app.state.supervisor
        supervisor.start("request_flusher", tracking.flusher.run)
        if settings.alert_dispatch_in_process:
            supervisor.start("alert_dispatcher", dispatcher.run)
        if settings.monitor_in_process:

            async def monitor_loop(stop: asyncio.Event) -> None:
                await run_loop(
                    monitor, interval=settings.monitor_interval_seconds, stop=stop, source="server"
                )

            supervisor.start("monitor_loop", monitor_loop)
        # After the tasks (the sweep in flight included) are done, in this order.
        supervisor.on_shutdown("final flush", tracking.flusher.shutdown)
        supervisor.on_shutdown("close monitor", monitor.aclose)
        supervisor.on_shutdown("dispose store", store.dispose)
        try:
            yield
        finally:
            await supervisor.shutdown()

    app = FastAPI(
        title="Watchkeeper",
        version="0.1.0",
        description="Monitoring, performance analysis and an issue desk for a deployed service.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.clock = utcnow
    app.state.monitor = monitor
    app.state.request_tracking = tracking
    receiver = OtlpReceiver.from_settings(store, tracking, settings)
    app.state.otlp_receiver = receiver
    app.state.agent_ingest = AgentIngest.from_settings(store, receiver.route_budget, settings)
    app.state.supervisor = Supervisor()
    app.state.login_throttle = LoginThrottle.from_settings(settings)
    app.state.token_cache = TokenCache()
    app.add_exception_handler(WatchkeeperError, _on_watchkeeper_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    for outage in (DBAPIError, *STORE_OUTAGES):
        app.add_exception_handler(outage, _on_store_error)
    routers = (probes.router, metrics.router, otlp.router, *api_v1_routers)
    for router in routers:
        app.include_router(router)
    declare_errors(app, routers, authenticated=get_current_user, store=get_store)
    install_pages(app)
    app.include_router(status_page_router)
    # Innermost first. The text guard buffers form bodies, so the body limit sits outside it.
    app.add_middleware(TextGuardMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        prefix_limits={
            otlp.PREFIX: settings.ingest_max_body_bytes,
            ingest.PREFIX: settings.ingest_max_body_bytes,
        },
    )
    # Inside the access log, outside the router: it reads the route the router matched.
    # The agent's middleware over the server's own recorder: it records, the flusher stores.
    app.add_middleware(WatchkeeperMiddleware, recorder=tracking.recorder)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    """``app.main:app`` for uvicorn, built on first use so importing has no side effects."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
