"""``POST /api/v1/auth/token``: the OAuth2 password flow, issuing a short-lived token."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import SessionDep, SettingsDep
from app.api.v1.prefix import API_V1
from app.core.enums import TokenKind
from app.schemas.users import AccessToken
from app.services import accounts

router = APIRouter(prefix=f"{API_V1}/auth", tags=["auth"])


@router.post("/token", response_model=AccessToken)
async def issue_session_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> AccessToken:
    """Exchanges a username and password for a bearer token that expires."""
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
