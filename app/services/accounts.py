"""Accounts: creating users, checking passwords, issuing, resolving and revoking tokens.

Functions take the session explicitly and only flush; the caller's unit of work commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.enums import Role, TokenKind
from app.core.errors import Conflict, NotAuthenticated, NotFound
from app.db.base import utcnow
from app.db.models import ApiToken, User

# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)
_BAD_CREDENTIALS = "Incorrect username or password"


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    role: Role,
    password: str | None = None,
    email: str | None = None,
) -> User:
    """A new user; Conflict when the username is taken."""
    user = User(
        username=username,
        role=role,
        email=email,
        password_hash=security.hash_password(password) if password else None,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"A user named {username!r} already exists") from None
    return user


async def list_users(session: AsyncSession) -> Sequence[User]:
    """Every user, oldest first."""
    return (await session.scalars(select(User).order_by(User.id))).all()


async def get_user(session: AsyncSession, username: str) -> User:
    """The user called ``username``; NotFound otherwise."""
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}")
    return user


async def authenticate(session: AsyncSession, username: str, password: str) -> User:
    """The active user with these credentials; one vague error for every failure."""
    user = await session.scalar(select(User).where(User.username == username))
    password_hash = user.password_hash if user is not None else None
    if not security.verify_password(password, password_hash) or user is None:
        raise NotAuthenticated(_BAD_CREDENTIALS)
    if not user.is_active:
        raise NotAuthenticated(_BAD_CREDENTIALS)
    return user


async def issue_token(
    session: AsyncSession,
    *,
    user: User,
    name: str,
    kind: TokenKind,
    ttl: timedelta | None = None,
    token: str | None = None,
) -> tuple[ApiToken, str]:
    """Stores a token for ``user`` and returns its row and the clear token (shown once)."""
    clear = token or security.new_token()
    row = ApiToken(
        user_id=user.id,
        name=name,
        kind=kind,
        token_hash=security.token_digest(clear),
        hint=clear[: security.TOKEN_HINT_LENGTH],
        expires_at=utcnow() + ttl if ttl else None,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict("That token is already registered") from None
    return row, clear


async def user_for_token(session: AsyncSession, token: str, *, now: datetime) -> User:
    """The active user holding a live (unexpired, unrevoked) ``token``."""
    found = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == security.token_digest(token))
        )
    ).one_or_none()
    if found is None:
        raise NotAuthenticated()
    row, user = found
    expired = row.expires_at is not None and row.expires_at <= now
    if row.revoked_at is not None or expired or not user.is_active:
        raise NotAuthenticated()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return user


async def list_tokens(session: AsyncSession, user: User) -> Sequence[ApiToken]:
    """The tokens of ``user``, newest first, without their secrets."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return (await session.scalars(query)).all()


async def revoke_token(session: AsyncSession, *, token_id: int, actor: User) -> ApiToken:
    """Revokes a token; admins may revoke any, others only their own (else NotFound)."""
    row = await session.get(ApiToken, token_id)
    if row is None or (actor.role is not Role.ADMIN and row.user_id != actor.id):
        raise NotFound(f"No token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def find_token_id(session: AsyncSession, token: str) -> int:
    """The id of the stored token whose clear value is ``token``."""
    token_id = await session.scalar(
        select(ApiToken.id).where(ApiToken.token_hash == security.token_digest(token))
    )
    if token_id is None:
        raise NotFound("No such token")
    return token_id
