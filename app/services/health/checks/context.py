"""What the checks of a sweep share: the application's engines, pooled clients, a cap,
the pace of starting checks and the clock round trips are timed with.

``CheckContext`` holds the application's own engines (keyed by target name), the clients a
check kind wants to reuse across its targets (an HTTP client per TLS setting, say: opened
on first use under a key of the kind's choosing, closed with the context), a cap on checks
in flight and the ``LoopPacer`` that starts a sweep's checks no faster than the event loop
keeps up. The runner takes the cap *before* a check's timeout starts, so waiting for a
slot never counts against a target as slowness.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Mapping
from types import TracebackType
from typing import Protocol, Self, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from app.services.health.checks.pacing import LoopPacer

DEFAULT_MAX_CONCURRENCY = 512


class Closeable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closeable)


class CheckContext:
    """Clients and limits shared by the checks of one sweep or many; close it when done."""

    def __init__(
        self,
        *,
        engines: Mapping[str, AsyncEngine] | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        pacer: LoopPacer | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.engines: Mapping[str, AsyncEngine] = dict(engines or {})
        self.max_concurrency = max_concurrency
        self.slots = asyncio.Semaphore(max_concurrency)
        self.pacer = pacer or LoopPacer()
        # Seconds, for the probes that time their round trips from the client's own events.
        self.clock = clock
        self._clients: dict[Hashable, Closeable] = {}

    def shared(self, key: Hashable, open_client: Callable[[], C]) -> C:
        """The client kept under ``key``, opened by ``open_client`` on first use."""
        if key not in self._clients:
            self._clients[key] = open_client()
        # Each key is chosen by one check kind, which always opens the same type under it.
        return cast(C, self._clients[key])

    async def aclose(self) -> None:
        """Close the clients this context opened (engines belong to their owner)."""
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
