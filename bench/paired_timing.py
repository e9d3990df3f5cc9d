"""Several variants of one app served by a single server process, each request timed.

Two variants served by two processes are measured apart: on a shared host the machine's
speed wanders by more, from one run of the load tool to the next, than a few µs of
middleware cost. Served by one process, with the variants' requests interleaved one by
one, the wander weighs on every variant alike, and the difference of their mean CPU time
per request is what the variant adds.

:class:`PairedApps` sends a request to the variant its first path segment names and
counts the CPU time the process spent on the call (``time.thread_time``: CPU time, so a
moment the process was not running is not counted as anyone's cost). Its totals are at
``GET /__timings``; the variants need no lifespan, so it answers the server's lifespan
messages itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TIMINGS_PATH = "/__timings"


class PairedApps:
    """An ASGI app serving ``apps[name]`` under ``/name/…``, timing every call."""

    def __init__(self, apps: Mapping[str, ASGIApp]) -> None:
        self._apps = dict(apps)
        self._requests = dict.fromkeys(self._apps, 0)
        self._cpu_ns = dict.fromkeys(self._apps, 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)
            return
        path = scope["path"]
        if path == TIMINGS_PATH:
            await self._send_timings(send)
            return
        name = path[1 : path.index("/", 1)]
        app = self._apps[name]
        started = time.thread_time_ns()
        await app(scope, receive, send)
        self._cpu_ns[name] += time.thread_time_ns() - started
        self._requests[name] += 1

    def timings(self) -> dict[str, dict[str, int]]:
        """Requests served and CPU nanoseconds spent on them, per variant, since start."""
        return {
            name: {"requests": self._requests[name], "cpu_ns": self._cpu_ns[name]}
            for name in self._apps
        }

    async def _send_timings(self, send: Send) -> None:
        body = json.dumps(self.timings()).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
