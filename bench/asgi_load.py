"""How the benchmarks drive an ASGI app: straight calls, no client or socket in the way, so
what is timed is the app and its middleware alone."""

from __future__ import annotations

import time
from collections.abc import MutableMapping, Sequence
from typing import Any

from starlette.types import ASGIApp

_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench")],
}


async def drive_asgi(app: ASGIApp, paths: Sequence[str], requests: int) -> float:
    """Microseconds per request, calling ``app`` ``requests`` times over ``paths`` in turn;
    RuntimeError if any answer was not 200."""
    failures = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal failures
        if message["type"] == "http.response.start" and message["status"] != 200:
            failures += 1

    scopes = [{**_SCOPE, "path": path, "raw_path": path.encode()} for path in paths]
    count = len(scopes)
    started = time.perf_counter()
    for number in range(requests):
        # Routing writes into the scope, so each request gets a fresh copy.
        await app(dict(scopes[number % count]), receive, send)
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} requests did not answer 200")
    return elapsed / requests * 1e6
