"""Users and their API tokens: the caller's own account, and admin-only management."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, status

from app.api.deps import AdminUser, CurrentUser, SessionDep, TokenCacheDep
from app.api.v1.prefix import API_V1
from app.schemas.base import RowId
from app.schemas.users import TokenCreate, TokenIssued, TokenRead, UserCreate, UserRead, UserUpdate
from app.services import accounts

router = APIRouter(prefix=API_V1, tags=["users"])
# No username is longer; refusing longer paths keeps them out of queries and logs.
Username = Annotated[str, Path(max_length=64, description="The user's username.")]
TokenId = Annotated[RowId, Path(description="The token's id.")]


@router.get("/users/me", response_model=UserRead)
async def read_me(user: CurrentUser) -> UserRead:
    """The caller's own account."""
    return UserRead.model_validate(user)


@router.get("/users/me/tokens", response_model=list[TokenRead])
async def list_my_tokens(user: CurrentUser, session: SessionDep) -> list[TokenRead]:
    """The caller's tokens, without their secrets."""
    return [TokenRead.model_validate(t) for t in await accounts.list_tokens(session, user)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, _: AdminUser, session: SessionDep) -> UserRead:
    """Creates a user (admin only)."""
    user = await accounts.create_user(
        session, username=body.username, role=body.role, password=body.password, email=body.email
    )
    return UserRead.model_validate(user)


@router.get("/users", response_model=list[UserRead])
async def list_users(_: AdminUser, session: SessionDep) -> list[UserRead]:
    """Every user (admin only)."""
    return [UserRead.model_validate(u) for u in await accounts.list_users(session)]


@router.patch("/users/{username}", response_model=UserRead)
async def update_user(
    username: Username,
    body: UserUpdate,
    admin: AdminUser,
    session: SessionDep,
    cache: TokenCacheDep,
) -> UserRead:
    """Changes a user's role or deactivates them, revoking their tokens (admin only)."""
    user = await accounts.update_user(
        session, username, actor=admin, cache=cache, is_active=body.is_active, role=body.role
    )
    return UserRead.model_validate(user)


@router.post(
    "/users/{username}/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED
)
async def create_api_token(
    username: Username, body: TokenCreate, _: AdminUser, session: SessionDep
) -> TokenIssued:
    """Creates a long-lived token for a user (admin only); the token is shown once.

    ``kind: ingest`` makes a token for an OpenTelemetry exporter: it may post to
    ``/v1/traces`` and ``/v1/metrics`` and nothing else.
    """
    owner = await accounts.get_user(session, username)
    ttl = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, clear = await accounts.issue_token(
        session, user=owner, name=body.name, kind=body.kind, ttl=ttl
    )
    return TokenIssued.model_validate(
        {**TokenRead.model_validate(row).model_dump(), "token": clear}
    )


@router.get("/users/{username}/tokens", response_model=list[TokenRead])
async def list_user_tokens(
    username: Username, _: AdminUser, session: SessionDep
) -> list[TokenRead]:
    """A user's tokens, without their secrets (admin only)."""
    owner = await accounts.get_user(session, username)
    return [TokenRead.model_validate(t) for t in await accounts.list_tokens(session, owner)]


@router.delete("/tokens/{token_id}", response_model=TokenRead)
async def revoke_token(
    token_id: TokenId, user: CurrentUser, session: SessionDep, cache: TokenCacheDep
) -> TokenRead:
    """Revokes a token: admins any, everyone else only their own."""
    return TokenRead.model_validate(
        await accounts.revoke_token(session, token_id=token_id, actor=user, cache=cache)
    )
