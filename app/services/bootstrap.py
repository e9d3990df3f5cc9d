"""First start: make sure someone can log in, without ever writing a secret to the log.

Every start also applies ``WATCHKEEPER_ADMIN_TOKEN``: a changed value replaces the one
configured before, so rotating the variable and restarting retires the old admin token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.errors import Conflict
from app.db.base import utcnow
from app.db.models import ApiToken, User
from app.services import accounts
from app.vocabulary.accounts import Role, TokenKind

logger = logging.getLogger("watchkeeper")
# The name tells the configured admin token apart from the admin's hand-made tokens.
CONFIGURED_TOKEN_NAME = "from WATCHKEEPER_ADMIN_TOKEN"
GENERATED_TOKEN_NAME = "bootstrap"
# Before rotation existed a configured first token was also named "bootstrap"; a generated
# one is the same kind of credential, so configuring a token replaces it too.
_REPLACED_BY_CONFIGURED = (CONFIGURED_TOKEN_NAME, GENERATED_TOKEN_NAME)


@dataclass(frozen=True)
class Bootstrap:
    """What the first start did: the admin it created and the token to show once."""

    username: str
    token: str | None  # None when the token came from WATCHKEEPER_ADMIN_TOKEN


async def ensure_admin(
    session: AsyncSession, *, username: str, configured_token: str | None
) -> Bootstrap | None:
    """Creates the first admin on a store without one; applies a configured admin token.

    Robot accounts (the incident reporter) may exist before anyone started the server, so
    the test is "no admin yet", not "no users yet". Returns what to announce, or None.
    """
    admins = await session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN)
    )
    if admins:
        if configured_token is not None:
            await _apply_configured_token(session, username, configured_token)
        return None
    admin = await accounts.create_user(session, username=username, role=Role.ADMIN)
    name = CONFIGURED_TOKEN_NAME if configured_token else GENERATED_TOKEN_NAME
    _, clear = await accounts.issue_token(
        session, user=admin, name=name, kind=TokenKind.API, token=configured_token
    )
    return Bootstrap(username=admin.username, token=None if configured_token else clear)


async def _apply_configured_token(session: AsyncSession, username: str, token: str) -> None:
    """Registers ``token`` for the admin and revokes the configured tokens it replaces.

    The same token again changes nothing; a configured token that was revoked stays
    revoked and replaces nothing; tokens made by hand (CLI, API) are never touched.
    """
    admin = await session.scalar(
        select(User).where(User.username == username, User.role == Role.ADMIN)
    )
    if admin is None or not admin.is_active:
        return
    row = await _configured_row(session, admin, token)
    if row.user_id != admin.id or row.revoked_at is not None:
        # Reviving it would undo a deliberate revocation; replacing the old tokens with a
        # dead one would lock the operator out.
        logger.warning(
            "WATCHKEEPER_ADMIN_TOKEN is a revoked token or another user's, so it does not "
            "work for %r; configure a new one",
            username,
        )
        return
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == admin.id,
            ApiToken.name.in_(_REPLACED_BY_CONFIGURED),
            ApiToken.id != row.id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )


async def _configured_row(session: AsyncSession, admin: User, token: str) -> ApiToken:
    """The stored row of ``token``, registered for ``admin`` first if it is new."""
    query = select(ApiToken).where(ApiToken.token_hash == security.token_digest(token))
    row = await session.scalar(query)
    if row is not None:
        return row
    try:
        row, _ = await accounts.issue_token(
            session, user=admin, name=CONFIGURED_TOKEN_NAME, kind=TokenKind.API, token=token
        )
    except Conflict:
        # A replica starting at the same time registered it first.
        row = (await session.scalars(query)).one()
    return row
