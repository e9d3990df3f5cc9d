"""``POST /api/v1/auth/token``: the OAuth2 password flow, issuing a short-lived token.

Failed logins are limited per username and per client address (``login_throttle``); the
app's one throttle lives on ``app.state.login_throttle``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import SessionDep, SettingsDep
from app.api.v1.prefix import API_V1
from app.schemas.users import AccessToken
from app.services import accounts
from app.services.login_throttle import LoginThrottle
from app.vocabulary.accounts import TokenKind

router = APIRouter(prefix=f"{API_V1}/auth", tags=["auth"])


def get_login_throttle(request: Request) -> LoginThrottle:
    """The app's failed-login throttle."""
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]


@router.post(
    "/token",
    response_model=AccessToken,
    responses={
        401: {"description": "Wrong username or password, or a deactivated account."},
        429: {"description": "Too many failed logins; wait `Retry-After` seconds."},
    },
)
async def issue_session_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> AccessToken:
    """Exchanges a username and password for a bearer token that expires."""
    address = request.client.host if request.client else None
    with throttle.attempt(form.username, address):
        user = await accounts.authenticate(session, form.username, form.password)
    row, clear = await accounts.issue_token(
        session,
        user=user,
        name="password login",
        kind=TokenKind.SESSION,
        ttl=timedelta(minutes=settings.session_token_ttl_minutes),
    )
    assert row.expires_at is not None
    return AccessToken(access_token=clear, expires_at=row.expires_at)
