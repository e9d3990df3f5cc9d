"""First start: make sure someone can log in, without ever writing a secret to the log."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.enums import Role, TokenKind
from app.db.models import ApiToken, User
from app.services import accounts


@dataclass(frozen=True)
class Bootstrap:
    """What the first start did: the admin it created and the token to show once."""

    username: str
    token: str | None  # None when the token came from WATCHKEEPER_ADMIN_TOKEN


async def ensure_admin(
    session: AsyncSession, *, username: str, configured_token: str | None
) -> Bootstrap | None:
    """Creates the first admin on a store without one; registers a configured admin token.

    Robot accounts (the incident reporter) may exist before anyone started the server, so
    the test is "no admin yet", not "no users yet". Returns what to announce, or None.
    """
    admins = await session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN)
    )
    if admins:
        if configured_token is not None:
            await _register_configured_token(session, username, configured_token)
        return None
    admin = await accounts.create_user(session, username=username, role=Role.ADMIN)
    _, clear = await accounts.issue_token(
        session, user=admin, name="bootstrap", kind=TokenKind.API, token=configured_token
    )
    return Bootstrap(username=admin.username, token=None if configured_token else clear)


async def _register_configured_token(session: AsyncSession, username: str, token: str) -> None:
    """Lets an operator rotate in a new admin token through the environment."""
    digest = security.token_digest(token)
    if await session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest)):
        return
    admin = await session.scalar(
        select(User).where(User.username == username, User.role == Role.ADMIN)
    )
    if admin is not None:
        await accounts.issue_token(
            session,
            user=admin,
            name="from WATCHKEEPER_ADMIN_TOKEN",
            kind=TokenKind.API,
            token=token,
        )
