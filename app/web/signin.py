"""``/login`` and ``/logout``: a password sign-in that gives the browser its session.

The same accounts calls as ``POST /api/v1/auth/token`` and the same failed-login throttle;
only the token's kind (``browser``) and where it goes (a cookie) differ.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from app.api.deps import SessionDep, SettingsDep, StoreDep, TokenCacheDep
from app.api.v1.endpoints.auth import LoginThrottleDep
from app.core.errors import NotAuthenticated, TooManyRequests
from app.services import accounts
from app.vocabulary.accounts import TokenKind
from app.web.pages import home_of, page_router, safe_next
from app.web.sessions import (
    CSRF_FIELD,
    Sender,
    check_sign_in_form,
    clear_session_cookie,
    clear_sign_in_nonce,
    new_sign_in_nonce,
    set_session_cookie,
    set_sign_in_cookie,
    signed_in,
)
from app.web.templating import render

router = page_router()
SESSION_NAME = "browser sign-in"
# Long enough for any real username or password; a megabyte of either is refused unread.
MAX_FIELD = 1024


def _sign_in_page(
    request: Request,
    *,
    next_page: str | None,
    message: str | None,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> Response:
    nonce = new_sign_in_nonce()
    response = render(
        request,
        "login.html",
        {"next": next_page, "message": message, "csrf_field": CSRF_FIELD, "nonce": nonce},
        status_code=status_code,
        headers={k: v for k, v in (headers or {}).items() if k.lower() == "retry-after"},
    )
    set_sign_in_cookie(request, response, nonce)
    return response


@router.get("/login")
async def sign_in_form(
    request: Request, store: StoreDep, cache: TokenCacheDep, next: str | None = None
) -> Response:
    """The sign-in form; someone already signed in goes straight on."""
    try:
        visitor = await signed_in(request, store, cache)
    except NotAuthenticated:
        return _sign_in_page(request, next_page=safe_next(next), message=None, status_code=200)
    return RedirectResponse(safe_next(next) or home_of(visitor.user), status_code=303)


@router.post("/login", dependencies=[Depends(check_sign_in_form)])
async def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    username: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    next: Annotated[str | None, Form(max_length=MAX_FIELD)] = None,
) -> Response:
    """Checks the password and gives the browser a session cookie."""
    address = request.client.host if request.client else None
    try:
        with throttle.attempt(username, address):
            user = await accounts.authenticate(session, username, password)
    except (NotAuthenticated, TooManyRequests) as refused:
        return _sign_in_page(
            request,
            next_page=safe_next(next),
            message=str(refused.detail),
            status_code=refused.status_code,
            headers=refused.headers,
        )
    ttl = timedelta(minutes=settings.session_token_ttl_minutes)
    _, token = await accounts.issue_token(
        session, user=user, name=SESSION_NAME, kind=TokenKind.BROWSER, ttl=ttl
    )
    response = RedirectResponse(safe_next(next) or home_of(user), status_code=303)
    set_session_cookie(request, response, token, int(ttl.total_seconds()))
    clear_sign_in_nonce(request, response)
    return response


@router.post("/logout")
async def sign_out(
    request: Request, sender: Sender, session: SessionDep, cache: TokenCacheDep
) -> Response:
    """Ends the session: its token is revoked, so the cookie opens nothing any more."""
    await accounts.revoke_token(session, token_id=sender.token_id, actor=sender.user, cache=cache)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response
