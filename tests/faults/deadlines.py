"""The deadlines the fault tests hold the service to, and the one way they wait.

Every wait is bounded. The bounds are deadlines against hanging, with a generous margin for
a busy machine, never speed claims.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

# The store bound the service is given here: small, so a test waits little. A request may
# spend it twice (the pooled connection's check, then a fresh connection's attempt), so
# answers are awaited for twice the bound and a generous margin for a busy machine: this is
# a deadline against hanging, not a speed claim.
BOUND_SECONDS = 1.0
ANSWER_DEADLINE = 2 * BOUND_SECONDS + 3.0
READY_DEADLINE = 2.0 + 3.0  # /readyz promises 2 s
RECOVERY_DEADLINE = 15.0
POLL_SECONDS = 0.01


async def within(seconds: float, awaitable: Awaitable[T], what: str) -> T:
    """``awaitable``'s result; the test fails, naming ``what``, if it takes longer."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        pytest.fail(f"{what} took more than {seconds} s")


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    seconds: float = RECOVERY_DEADLINE,
) -> None:
    """Returns once ``condition`` holds (polled, for what announces no event); the test
    fails, naming ``what``, if it still does not after ``seconds``."""

    async def poll() -> None:
        while True:
            held = condition()
            if await held if inspect.isawaitable(held) else held:
                return
            await asyncio.sleep(POLL_SECONDS)

    await within(seconds, poll(), what)
