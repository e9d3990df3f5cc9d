"""Accounts: users and their life cycle, passwords, and issuing, resolving, revoking tokens.

Functions take the session explicitly and only flush; the caller's unit of work commits.
:class:`TokenCache` is the process's memory of resolved tokens, so a hot token costs no
store query; the functions that revoke or change what a token may do tell it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import event, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached

from app.core import security
from app.core.errors import Conflict, NotAuthenticated, NotFound
from app.db.base import utcnow
from app.db.models import ApiToken, User
from app.db.store import Store
from app.vocabulary.accounts import Role, TokenKind

# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)
# How long a process trusts a token it resolved: a token revoked, or a user deactivated or
# demoted, by another process sharing the store is refused by this one within this time.
TOKEN_CACHE_SECONDS: Final = 1.0
# Tokens remembered at most; the least recently used are forgotten first.
TOKEN_CACHE_ENTRIES: Final = 10_000
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
    cache: TokenCache | None,
    is_active: bool | None = None,
    role: Role | None = None,
) -> User:
    """Changes the given fields (None: unchanged); deactivating revokes every live token.

    ``actor`` is the admin asking, or None for the operator at the server's shell. Nobody
    may deactivate or demote themselves or the last active admin (Conflict). ``cache``, the
    process's (None at the shell), forgets the user's tokens once the change commits.
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
    if cache is not None:
        cache.forget_on_commit(session, user_id=user.id)
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
    """Who holds a live token, what kind of token it is (which limits what it may do),
    which token it is and until when it lives."""

    user: User
    kind: TokenKind
    token_id: int
    expires_at: datetime | None


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
    return Bearer(user, row.kind, row.id, row.expires_at)


async def list_tokens(session: AsyncSession, user: User) -> Sequence[ApiToken]:
    """The tokens of ``user``, newest first, without their secrets."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return (await session.scalars(query)).all()


async def revoke_token(
    session: AsyncSession, *, token_id: int, actor: User, cache: TokenCache | None
) -> ApiToken:
    """Revokes a token; admins may revoke any, others only their own (else NotFound).

    ``cache``, the process's (None at the shell), forgets the token once this commits.
    """
    row = await session.get(ApiToken, token_id)
    if row is None or (actor.role is not Role.ADMIN and row.user_id != actor.id):
        raise NotFound(f"No token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
        if cache is not None:
            cache.forget_on_commit(session, user_id=row.user_id, token_id=row.id)
    return row


async def find_token_id(session: AsyncSession, token: str) -> int:
    """The id of the stored token whose clear value is ``token``."""
    token_id = await session.scalar(
        select(ApiToken.id).where(ApiToken.token_hash == security.token_digest(token))
    )
    if token_id is None:
        raise NotFound("No such token")
    return token_id


_USER_MAPPER: Final = inspect(User)
# Every column of a user: what a cached caller is copied from for each request.
_USER_COLUMNS: Final = tuple(column.key for column in _USER_MAPPER.column_attrs)


def _detached_copy(user: User) -> User:
    """A detached copy of ``user``: each request gets its own, so no two share an object.

    Filled as a query fills a loaded row, a blank instance and its values: the constructor
    would cost three times as much, on every authenticated request.
    """
    copy: User = _USER_MAPPER.class_manager.new_instance()
    copy.__dict__.update({key: user.__dict__[key] for key in _USER_COLUMNS})
    make_transient_to_detached(copy)
    return copy


@dataclass(frozen=True, slots=True)
class _Resolved:
    bearer: Bearer
    born: float  # the cache's clock just before the store was asked


class TokenCache:
    """The bearers of the tokens this process resolved lately, by token digest.

    A token is looked up in the store (:func:`bearer_of_token`, which also keeps
    ``last_used_at`` to within :data:`LAST_USED_RESOLUTION`) when it is new to the cache
    or its entry is ``ttl`` seconds old; every other use costs no query. Each entry's age
    counts from before its query, so a token revoked by another process sharing the store
    (its user deactivated or demoted) is refused here within ``ttl`` of that commit. A
    revocation in this process is forgotten as soon as it commits
    (:meth:`forget_on_commit`). Expiry is checked on every use. Unknown and refused tokens
    are never remembered, so a token issued anywhere works at once.

    Concurrent look-ups of one token share one query. The caller handed out is a detached
    copy of the user: read it, and load the user again to change it.
    """

    def __init__(
        self,
        *,
        ttl: float = TOKEN_CACHE_SECONDS,
        max_entries: int = TOKEN_CACHE_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._now = now
        self._entries: OrderedDict[str, _Resolved] = OrderedDict()
        self._looking_up: dict[str, asyncio.Task[_Resolved]] = {}
        # Bumped by every forget: a look-up that began before it must not be remembered.
        self._generation = 0

    async def bearer(self, store: Store, token: str) -> Bearer:
        """The live bearer of ``token``; NotAuthenticated for anything unknown or dead."""
        digest = security.token_digest(token)
        resolved = self._entries.get(digest)
        if resolved is None or self._monotonic() - resolved.born >= self.ttl:
            resolved = await self._look_up(store, digest, token)
        else:
            self._entries.move_to_end(digest)
        bearer = resolved.bearer
        if bearer.expires_at is not None and bearer.expires_at <= self._now():
            raise NotAuthenticated()
        return dataclasses.replace(bearer, user=_detached_copy(bearer.user))

    def forget_on_commit(
        self, session: AsyncSession, *, user_id: int, token_id: int | None = None
    ) -> None:
        """Forgets ``token_id`` (None: every token of ``user_id``) when ``session`` commits.

        Not before: a look-up made in between would still read the old row and keep it.
        """

        def forget(_: Session) -> None:
            self._forget(user_id, token_id)

        event.listen(session.sync_session, "after_commit", forget, once=True)

    def _forget(self, user_id: int, token_id: int | None) -> None:
        self._generation += 1
        self._looking_up.clear()  # a look-up under way may have read the old row
        stale = [
            digest
            for digest, resolved in self._entries.items()
            if resolved.bearer.user.id == user_id and token_id in (None, resolved.bearer.token_id)
        ]
        for digest in stale:
            del self._entries[digest]

    async def _look_up(self, store: Store, digest: str, token: str) -> _Resolved:
        task = self._looking_up.get(digest)
        if task is None:
            task = asyncio.create_task(self._resolve(store, digest, token))
            self._looking_up[digest] = task
            task.add_done_callback(lambda done: self._looked_up(digest, done))
        # Shielded: a caller that goes away must not cancel the others' shared query.
        return await asyncio.shield(task)

    def _looked_up(self, digest: str, task: asyncio.Task[_Resolved]) -> None:
        if self._looking_up.get(digest) is task:
            del self._looking_up[digest]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have gone away

    async def _resolve(self, store: Store, digest: str, token: str) -> _Resolved:
        born, generation = self._monotonic(), self._generation
        try:
            async with store.unit_of_work() as session:
                bearer = await bearer_of_token(session, token, now=self._now())
        except NotAuthenticated:
            self._entries.pop(digest, None)
            raise
        resolved = _Resolved(bearer, born)
        if generation == self._generation:
            self._entries[digest] = resolved
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return resolved
