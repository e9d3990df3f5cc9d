"""Records every HTTP request's route template, method, status class and duration.

A pure ASGI middleware, so it adds one closure and two clock reads per request and never
buffers a body. It names a request by the route the router already matched (the matched
route's ``path``, e.g. ``/items/{item_id}``), never by matching again and never by the raw
path: the number of series stays the number of routes, whatever scanners send. Requests
that matched nothing share one bucket, and requests served inside a mount (static files, a
mounted sub-application) are named by the path the mount matched; ``route_template`` in
``app.core.logging`` decides, for the access log and these metrics alike.

Routers must carry their full prefix (see ``app/api/v1/router.py``): FastAPI keeps the
route object of an included router, whose ``path`` lacks a prefix given at inclusion.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import route_template
from app.services.performance.recorder import RequestRecorder


class RequestMetricsMiddleware:
    """Times each HTTP request and hands it to a :class:`RequestRecorder`."""

    def __init__(
        self,
        app: ASGIApp,
        recorder: RequestRecorder,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clock = self.clock
        started = clock()
        root_path = scope.get("root_path", "")
        status = 500
        finished: float | None = None

        async def timed_send(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body", False):
                # Stamped before handing over, so a slow client's socket is not our latency.
                finished = clock()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            # Whatever was sent, the response broke: count it as a server error, then re-raise.
            status = 500
            raise
        finally:
            self.recorder.record(
                route_template(scope, root_path),
                scope["method"],
                status,
                ((clock() if finished is None else finished) - started) * 1000.0,
                scope.get("state", {}).get("request_id"),
            )
