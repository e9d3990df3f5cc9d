"""Password hashing (argon2) and opaque bearer tokens stored only as hashes.

Checking a password costs argon2's full price (64 MiB and up to four cores for a good
fraction of a second) by design, so the API checks passwords off the event loop, in worker
threads (argon2 releases the GIL), a few at a time. A login takes its turn
(``password_check_turn``) before it touches the store, so a burst of logins waits on the
loop holding neither a thread, nor 64 MiB, nor a database connection.

Tokens carry 256 bits of randomness, so a fast SHA-256 digest is enough to store them:
there is nothing to brute-force, and lookups by digest stay a single indexed query.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "wk_"
# Shown next to a token in listings so people can tell them apart without the secret.
TOKEN_HINT_LENGTH = len(TOKEN_PREFIX) + 6

_hasher = PasswordHasher()
# Verified against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# Each check keeps ``parallelism`` (4) cores busy: more at once than the cores allow only
# slows every one of them and starves the event loop. Never more than two (memory).
_CHECKS_AT_ONCE = max(1, min(2, (os.cpu_count() or 1) // _hasher.parallelism))


def _yield_to_the_loop() -> None:
    """Lowers the hashing thread's CPU priority (Linux nice is per thread), so on a busy
    host the event loop is scheduled first and probes stay fast while logins queue."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 10)


_check_pool = ThreadPoolExecutor(
    max_workers=_CHECKS_AT_ONCE, thread_name_prefix="argon2", initializer=_yield_to_the_loop
)
# One semaphore per event loop: an asyncio.Semaphore belongs to the loop it first waits on.
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; spends the same time when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@asynccontextmanager
async def password_check_turn() -> AsyncIterator[None]:
    """Waits, on the loop, until fewer than the allowed password checks are running."""
    loop = asyncio.get_running_loop()
    turn = _turns.setdefault(loop, asyncio.Semaphore(_CHECKS_AT_ONCE))
    async with turn:
        yield


async def verify_password_off_loop(password: str, password_hash: str | None) -> bool:
    """``verify_password`` in the argon2 worker threads, so the event loop never waits on it."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_check_pool, verify_password, password, password_hash)


def new_token() -> str:
    """A fresh opaque bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()
