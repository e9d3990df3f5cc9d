"""The injection vocabulary of the API: the store's session, the caller and role guards.

A route's signature reads as a sentence: ``session: SessionDep, user: StaffUser``. Every
dependency is ``async def``, the ones that never wait included: FastAPI runs a plain ``def``
in a worker thread, and that hop cost a request ~300 µs on a busy host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import NotAuthenticated, PermissionDenied
from app.db.models import Issue, User
from app.db.store import Store
from app.schemas.base import RowId
from app.services import accounts
from app.services.alerts.desk import AlertDesk
from app.services.alerts.engine import channels_of
from app.services.health.system_monitor import SystemMonitor
from app.services.health.windows import config_windows
from app.services.issues.issue_tracker import IssueTracker
from app.services.issues.sla import ResolutionTargets
from app.services.performance.performance_analyzer import PerformanceAnalyzer
from app.services.performance.thresholds import Thresholds
from app.vocabulary.accounts import Role, TokenKind


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_session(store: Annotated[Store, Depends(get_store)]) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits before the response is sent, or rolls back."""
    async with store.unit_of_work() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(app_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
# scope="function": commit before the response goes out, so a failed commit is an error
# response and never a success the store did not keep.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# Declares bearer auth in the OpenAPI document; the header is read by ``user_from_request``.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API token (`watchkeeper tokens create`) or one from POST /api/v1/auth/token.",
)


def _bearer_token(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials or " " in credentials:
        raise NotAuthenticated()
    return credentials


async def get_token_cache(request: Request) -> accounts.TokenCache:
    """The process's memory of resolved tokens, told of revocations made here."""
    cache: accounts.TokenCache = request.app.state.token_cache
    return cache


TokenCacheDep = Annotated[accounts.TokenCache, Depends(get_token_cache)]


async def _bearer(request: Request, store: Store) -> accounts.Bearer:
    cache = await get_token_cache(request)
    bearer = await cache.bearer(store, _bearer_token(request))
    if bearer.kind is TokenKind.BROWSER:
        # A sign-in cookie is for the pages (CSRF-checked forms, signed out at /logout);
        # kept off the API, a leaked cookie opens no script's door.
        raise PermissionDenied("A browser session opens the pages only; use an API token")
    return bearer


async def user_from_request(request: Request, store: Store) -> User:
    """The caller named by the request's bearer token; 401 for anything missing or wrong.

    An ingest token is refused (403) here, so it opens no route but the ingest ones: a
    token stolen from an exporter's environment must not read issues. The caller comes
    from the token cache, detached from any session: read it, never change it.
    """
    bearer = await _bearer(request, store)
    if bearer.kind is TokenKind.INGEST:
        raise PermissionDenied("An ingest token may only post telemetry")
    return bearer.user


async def get_current_user(
    request: Request,
    store: StoreDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    """The authenticated caller (the dependency every protected route names)."""
    return await user_from_request(request, store)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_staff_user(user: CurrentUser) -> User:
    """Admins and developers only."""
    if not user.role.is_staff:
        raise PermissionDenied("This needs the developer or admin role")
    return user


async def get_admin_user(user: CurrentUser) -> User:
    """Admins only."""
    if user.role is not Role.ADMIN:
        raise PermissionDenied("This needs the admin role")
    return user


StaffUser = Annotated[User, Depends(get_staff_user)]
AdminUser = Annotated[User, Depends(get_admin_user)]


async def get_ingest_caller(
    request: Request,
    store: StoreDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    """Who may post telemetry: an ingest token, or a developer's or admin's token.

    From the token cache like every caller; a look-up it needs runs in a unit of work of
    its own, committed at once, so SQLite's one writer never waits on this request.
    """
    bearer = await _bearer(request, store)
    if bearer.kind is not TokenKind.INGEST and not bearer.user.role.is_staff:
        raise PermissionDenied(
            "Posting telemetry needs an ingest token, or a developer's or admin's"
        )
    return bearer.user


IngestCaller = Annotated[User, Depends(get_ingest_caller)]


async def get_clock(request: Request) -> Callable[[], datetime]:
    """The app's clock: UTC now, or a test's frozen one."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


async def get_issue_tracker(
    session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> IssueTracker:
    """The issue desk bound to this request's unit of work."""
    targets = ResolutionTargets(hours=settings.issue_resolution_target_hours)
    return IssueTracker(session, targets=targets, clock=clock)


TrackerDep = Annotated[IssueTracker, Depends(get_issue_tracker)]
IssueId = Annotated[RowId, Path(description="The issue's id.")]


async def get_issue_for_reader(issue_id: IssueId, user: CurrentUser, tracker: TrackerDep) -> Issue:
    """The issue in the path, if the caller may see it (404 otherwise, never 403)."""
    return await tracker.get(issue_id, user)


IssueForReader = Annotated[Issue, Depends(get_issue_for_reader)]


async def get_monitor(request: Request) -> SystemMonitor:
    """The process's SystemMonitor (shared cache, clients and pending sweeps)."""
    monitor: SystemMonitor = request.app.state.monitor
    return monitor


MonitorDep = Annotated[SystemMonitor, Depends(get_monitor)]


async def get_alert_desk(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, monitor: MonitorDep
) -> AlertDesk:
    """Alerts and maintenance windows, bound to this request's unit of work."""
    return AlertDesk(
        session,
        channels=channels_of(settings),
        configured_windows=config_windows(settings.maintenance_windows),
        components=frozenset(target.name for target in monitor.targets),
        clock=clock,
    )


AlertDeskDep = Annotated[AlertDesk, Depends(get_alert_desk)]


async def get_performance_analyzer(
    session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> PerformanceAnalyzer:
    """The performance analysis of this request's session, as of the app's clock."""
    return PerformanceAnalyzer(
        session,
        now=clock(),
        objectives=settings.objectives,
        thresholds=Thresholds.from_settings(settings),
        pool_size=settings.database_pool_size,
        resolution_targets=ResolutionTargets(hours=settings.issue_resolution_target_hours),
        minute_retention=timedelta(days=settings.performance_rollup_after_days),
    )


AnalyzerDep = Annotated[PerformanceAnalyzer, Depends(get_performance_analyzer)]
