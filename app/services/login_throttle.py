"""Limits failed password logins per username and per client address, in memory.

Each limit is a sliding window: at most N failures in any W seconds. A caller over either
limit is refused before any password is checked, so a locked username answers the same
whether or not the password is right, and is told to retry when the oldest counted failure
leaves the window. Refused attempts are not counted, so a lock never outlasts the window
of the failures that caused it; an attacker cannot lock a real user out for long.

Logins still being checked count against the limits as if they had failed: otherwise a
burst of concurrent guesses would all pass before the first one is recorded.

State is per process (replicas each keep their own) and bounded: at most ``max_keys``
usernames and addresses each, the least recently failed forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.core.config import Settings
from app.core.errors import NotAuthenticated, TooManyRequests

# Usernames are at most 64 characters; a longer one cannot exist, and truncating it keeps
# a megabyte of "username" from becoming a megabyte of key.
_USERNAME_KEY_LENGTH = 64
# Stands for every client whose address the server does not know.
UNKNOWN_ADDRESS = "-"
DEFAULT_MAX_KEYS = 10_000


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failed logins in any ``window_seconds``."""

    failures: int
    window_seconds: float


class _Window:
    """The recent failures of each key (a username or an address) under one limit."""

    def __init__(self, limit: Limit, max_keys: int) -> None:
        self._limit = limit
        self._max_keys = max_keys
        # Failure times and the address each came from, oldest first; only the newest
        # ``limit.failures`` can decide anything, so each deque keeps no more.
        self._failures: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._in_flight: Counter[str] = Counter()

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        failures = self._live(key, now)
        # How many counted failures must leave the window before one more attempt fits.
        excess = len(failures) + self._in_flight[key] - self._limit.failures + 1
        if excess <= 0:
            return 0.0
        if excess > len(failures):
            # Only attempts still being checked stand in the way; they end in a moment.
            return 1.0
        return failures[excess - 1][0] + self._limit.window_seconds - now

    def start(self, key: str) -> None:
        self._in_flight[key] += 1

    def finish(self, key: str) -> None:
        self._in_flight[key] -= 1
        if self._in_flight[key] <= 0:
            del self._in_flight[key]

    def fail(self, key: str, address: str, now: float) -> None:
        failures = self._failures.get(key)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self._limit.failures)
            if len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)
        self._failures.move_to_end(key)
        failures.append((now, address))

    def forgive(self, key: str, address: str) -> None:
        """Forgets the failures of ``key`` that came from ``address``."""
        failures = self._failures.get(key)
        if failures is None:
            return
        kept = [failure for failure in failures if failure[1] != address]
        if kept:
            self._failures[key] = deque(kept, maxlen=self._limit.failures)
        else:
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)

    def _live(self, key: str, now: float) -> deque[tuple[float, str]]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0][0] <= now - self._limit.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures


class LoginThrottle:
    """The failed-login limits of one process; see the module docstring."""

    def __init__(
        self,
        *,
        per_username: Limit,
        per_address: Limit,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._usernames = _Window(per_username, max_keys)
        self._addresses = _Window(per_address, max_keys)
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> LoginThrottle:
        """The throttle the settings ask for."""
        return cls(
            per_username=Limit(
                settings.login_failures_per_username, settings.login_username_window_seconds
            ),
            per_address=Limit(
                settings.login_failures_per_address, settings.login_address_window_seconds
            ),
            clock=clock,
        )

    def retry_after(self, username: str, address: str | None) -> float:
        """Seconds until this username may try from this address; 0 when it may now."""
        now = self._clock()
        return max(
            self._usernames.wait(_username_key(username), now),
            self._addresses.wait(address or UNKNOWN_ADDRESS, now),
        )

    @contextmanager
    def attempt(self, username: str, address: str | None) -> Iterator[None]:
        """Guards one login: TooManyRequests when over a limit, else runs the block.

        A NotAuthenticated out of the block counts as a failure; a clean exit forgives the
        username's failures from this address (never the address's own: one good account
        must not reset an address that guesses at others). Other errors count for nothing.
        """
        user_key, address_key = _username_key(username), address or UNKNOWN_ADDRESS
        wait = self.retry_after(username, address)
        if wait > 0:
            raise TooManyRequests(
                "Too many failed logins; try again later", retry_after=math.ceil(wait)
            )
        self._usernames.start(user_key)
        self._addresses.start(address_key)
        try:
            yield
        except NotAuthenticated:
            now = self._clock()
            self._usernames.fail(user_key, address_key, now)
            self._addresses.fail(address_key, address_key, now)
            raise
        else:
            self._usernames.forgive(user_key, address_key)
        finally:
            self._usernames.finish(user_key)
            self._addresses.finish(address_key)

    @property
    def tracked_keys(self) -> int:
        """How many usernames and addresses have failures remembered (memory in use)."""
        return len(self._usernames) + len(self._addresses)


def _username_key(username: str) -> str:
    return username[:_USERNAME_KEY_LENGTH].casefold()
