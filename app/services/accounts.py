"""Accounts: users and their life cycle, passwords, and issuing, resolving, revoking tokens.

Functions take the session explicitly and only flush; the caller's unit of work commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.errors import Conflict, NotAuthenticated, NotFound
from app.db.base import utcnow
from app.db.models import ApiToken, User
from app.vocabulary.accounts import Role, TokenKind

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


async def update_user(
    session: AsyncSession,
    username: str,
    *,
    actor: User | None,
    is_active: bool | None = None,
    role: Role | None = None,
) -> User:
    """Changes the given fields (None: unchanged); deactivating revokes every live token.

    ``actor`` is the admin asking, or None for the operator at the server's shell. Nobody
    may deactivate or demote themselves or the last active admin (Conflict).
    """
    user = await get_user(session, username)
    active = user.is_active if is_active is None else is_active
    stays_admin = active and (role or user.role) is Role.ADMIN
    if user.role is Role.ADMIN and user.is_active and not stays_admin:
        if actor is not None and actor.id == user.id:
            raise Conflict("You cannot deactivate or demote yourself; ask another admin")
        if not await _other_active_admins(session, user):
            raise Conflict(f"{username!r} is the last active admin")
    if not active:
        # Revoked, not merely refused: reactivating the user must not revive old tokens.
        await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    user.is_active = active
    user.role = role or user.role
    await session.flush()
    return user


async def _other_active_admins(session: AsyncSession, user: User) -> bool:
    # Locking every active admin, ``user`` included, in one order: two admins demoting each
    # other at once must not both succeed. PostgreSQL makes the second wait and re-read;
    # SQLite (no FOR UPDATE) has a single writer anyway.
    query = (
        select(User.id)
        .where(User.role == Role.ADMIN, User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    return any(admin_id != user.id for admin_id in (await session.scalars(query)).all())


async def authenticate(session: AsyncSession, username: str, password: str) -> User:
    """The active user with these credentials; one vague error for every failure."""
    # The turn comes first: a login queued behind others must not hold a connection.
    async with security.password_check_turn():
        user = await session.scalar(select(User).where(User.username == username))
        password_hash = user.password_hash if user is not None else None
        verified = await security.verify_password_off_loop(password, password_hash)
    if not verified or user is None:
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
    if not user.is_active:
        # It would not work now, and would come to life on reactivation.
        raise Conflict(f"{user.username!r} is deactivated; activate them first")
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


@dataclass(frozen=True, slots=True)
class Bearer:
    """Who holds a live token, and what kind of token it is (which limits what it may do)."""

    user: User
    kind: TokenKind


async def bearer_of_token(session: AsyncSession, token: str, *, now: datetime) -> Bearer:
    """The active user holding a live (unexpired, unrevoked) ``token``, and its kind."""
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
    return Bearer(user, row.kind)


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
