"""The contract of accounts: users, roles and bearer tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.schemas.base import RequestSchema, ResponseSchema
from app.vocabulary.accounts import Role, TokenKind

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$"


class UserCreate(RequestSchema):
    username: str = Field(pattern=USERNAME_PATTERN, description="2-64 letters, digits, _ . -")
    password: str | None = Field(
        default=None,
        min_length=8,
        max_length=1024,
        description="Omit for an account that only uses API tokens.",
    )
    role: Role = Role.USER
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserUpdate(RequestSchema):
    """Only the fields sent are changed."""

    is_active: bool | None = Field(
        default=None, description="false revokes every token of the user at once."
    )
    role: Role | None = None


class UserRef(ResponseSchema):
    """How a person appears on another object (an issue's reporter or assignee)."""

    id: int
    username: str


class UserRead(UserRef):
    email: str | None
    role: Role
    is_active: bool
    created_at: datetime


class TokenCreate(RequestSchema):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    kind: Literal[TokenKind.API, TokenKind.INGEST] = Field(
        default=TokenKind.API,
        description="api: acts as its user; ingest: may only post to /v1/traces and /v1/metrics.",
    )


class TokenRead(ResponseSchema):
    id: int
    name: str
    kind: TokenKind
    hint: str = Field(description="The first characters of the token, to tell tokens apart.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIssued(TokenRead):
    token: str = Field(description="The bearer token; shown this once and never again.")


class AccessToken(ResponseSchema):
    """The OAuth2 password-flow answer of ``POST /auth/token``."""

    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
