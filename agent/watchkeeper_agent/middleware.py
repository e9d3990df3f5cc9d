"""The ASGI integration: ``app.add_middleware(watchkeeper_agent.WatchkeeperMiddleware)``.

A pure ASGI middleware (FastAPI, Starlette, or any ASGI app whose router puts the matched
route in the scope), so a request costs one closure, two clock reads and a place in the
recorder's queue, and no body is ever buffered. A request is named by the route the router
already matched (the matched route's ``path``, e.g. ``/items/{item_id}``), never by
matching again and never by the raw path: the number of series stays the number of routes,
whatever scanners send. Requests that matched nothing share one bucket, and requests served inside
a mount (static files, a mounted sub-application) are named by the path the mount matched.

The duration ends when the last body chunk is handed to the server, so a slow client's
socket and background tasks run after the response are not the app's latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Unpack

from watchkeeper_agent.agent import Agent
from watchkeeper_agent.config import AgentOptions
from watchkeeper_agent.recorder import RequestRecorder
from watchkeeper_agent.vocabulary import UNMATCHED_ROUTE

# The ASGI types, spelled out so the agent needs no framework to import.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID_HEADER = b"x-request-id"


def route_template(scope: Scope, root_path: str) -> str:
    """The template that served ``scope``, or one shared bucket for paths nothing matched;
    ``root_path`` is the scope's value before routing."""
    mounted = scope.get("root_path", "")
    if len(mounted) > len(root_path):
        # Mounts extend root_path by the part of the path they matched.
        return str(mounted[len(root_path) :])
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def request_id(scope: Scope) -> str | None:
    """The id an earlier middleware gave the request (``scope["state"]["request_id"]``),
    else the ``X-Request-ID`` header the client or a proxy sent."""
    state = scope.get("state")
    if state and (given := state.get("request_id")) is not None:
        return str(given)
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER:
            return bytes(value).decode("latin-1")
    return None


class WatchkeeperMiddleware:
    """Times each HTTP request and counts it in an :class:`Agent`'s recorder.

    Give it an ``agent``, or a ``recorder`` to count into without shipping (its owner
    delivers the buckets), or neither: it then builds an agent from ``options`` and the
    environment and closes it when the app's lifespan ends.
    """

    def __init__(
        self,
        app: ASGIApp,
        agent: Agent | None = None,
        *,
        recorder: RequestRecorder | None = None,
        clock: Callable[[], float] = time.perf_counter,
        **options: Unpack[AgentOptions],
    ) -> None:
        self.app = app
        self._owns_agent = agent is None and recorder is None
        if agent is None:
            agent = Agent(recorder) if recorder is not None else Agent.configure(**options)
        self.agent = agent
        self._record = agent.record
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self._owns_agent:
                await self.app(scope, receive, self._closing_at_shutdown(send))
            else:
                await self.app(scope, receive, send)
            return
        clock = self._clock
        started = clock()
        root_path = scope.get("root_path", "")
        status = 500
        finished: float | None = None

        # A plain function handing back the server's awaitable: no coroutine of ours is
        # built and stepped through for each message.
        def timed_send(message: Message) -> Awaitable[None]:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body", False):
                # Stamped before handing over, so a slow client's socket is not our latency.
                finished = clock()
            return send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            # Whatever was sent, the response broke: count it as a server error, then re-raise.
            status = 500
            raise
        finally:
            self._record(
                route_template(scope, root_path),
                scope["method"],
                status,
                ((clock() if finished is None else finished) - started) * 1000.0,
                request_id(scope),
            )

    def _closing_at_shutdown(self, send: Send) -> Send:
        """``send`` for the lifespan, delivering what is left once the app has shut down."""

        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                # close() waits on the network: off the event loop, which may still serve.
                await asyncio.to_thread(self.agent.close)
            await send(message)

        return lifespan_send
