"""What every page route shares: the route class that answers errors in HTML, the page
frame (who is signed in, the navigation, the clock) and the routers' own constructor.

The API answers our errors as JSON (``app.main``); a person gets a page instead: a
signed-out visit goes to ``/login`` (an htmx refresh is told to go there too), a refusal
or a mistake in a form shows a page saying what went wrong and where to go on.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from app.api.errors import field_problems
from app.core.errors import NotAuthenticated, StoreUnavailable, WatchkeeperError
from app.db.models import User
from app.db.store import STORE_OUTAGES, is_outage
from app.web.sessions import CSRF_FIELD, SignedIn
from app.web.templating import render

SIGN_IN: Final = "/login"
STAFF_HOME: Final = "/"
USER_HOME: Final = "/issues"


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


STAFF_NAV: Final = (
    NavItem("Overview", "/"),
    NavItem("Performance", "/performance"),
    NavItem("Issues", "/issues"),
    NavItem("Alerts", "/alerts"),
    NavItem("Report an issue", "/issues/new"),
)
USER_NAV: Final = (NavItem("Report an issue", "/issues/new"), NavItem("My issues", "/issues"))


def home_of(user: User) -> str:
    """Where a person lands after signing in."""
    return STAFF_HOME if user.role.is_staff else USER_HOME


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target


def page(
    request: Request,
    visitor: SignedIn,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """A page in the frame: navigation for the visitor's role, their CSRF token, the clock."""
    return render(
        request,
        template,
        {
            "visitor": visitor,
            "nav": STAFF_NAV if visitor.is_staff else USER_NAV,
            "csrf_field": CSRF_FIELD,
            "current": request.url.path,
            "now": request.app.state.clock(),
            **context,
        },
        status_code=status_code,
    )


def _sign_in_first(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = f"{SIGN_IN}?next={quote(here, safe='/')}" if request.method == "GET" else SIGN_IN
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _came_from(request: Request) -> str | None:
    """The page of this site the request came from (pages send a same-origin Referer)."""
    referer, base = request.headers.get("referer", ""), str(request.base_url)
    return safe_next("/" + referer[len(base) :]) if referer.startswith(base) else None


def error_page(
    request: Request, status_code: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A page saying what went wrong; the error's own headers (Retry-After) kept."""
    return render(
        request,
        "error.html",
        {"status_code": status_code, "detail": detail, "back": _came_from(request)},
        status_code=status_code,
        headers={k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"},
    )


def _problems(error: RequestValidationError) -> str:
    found = []
    for problem in field_problems(error.errors()):
        where = ".".join(str(part) for part in problem["loc"][1:]) or "the form"
        found.append(f"{where}: {problem['msg']}")
    return "; ".join(found)


class PageRoute(APIRoute):
    """A route whose errors are pages (or a redirect to sign in), not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except NotAuthenticated:
                return _sign_in_first(request)
            except WatchkeeperError as error:
                return error_page(request, error.status_code, str(error.detail), error.headers)
            except RequestValidationError as error:
                return error_page(request, 422, _problems(error))
            except (DBAPIError, *STORE_OUTAGES) as error:
                if not is_outage(error):
                    raise
                unavailable = StoreUnavailable()
                return error_page(request, unavailable.status_code, str(unavailable.detail))

        return page_handler


def page_router() -> APIRouter:
    """A router of pages: HTML errors, and kept out of the API's OpenAPI document."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)
