"""A real Watchkeeper for end-to-end stories: served by uvicorn on a loopback port.

The server runs in a thread with its own event loop, as a separate process would, so that
the OpenTelemetry exporters (which post from their own threads with blocking HTTP) and the
test's event loop never wait on each other. What must run inside Watchkeeper (flushing
its recorded minutes) is handed to that loop with :meth:`RunningWatchkeeper.call`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from app.core.config import Settings
from app.core.http_limits import limited_protocol
from app.main import create_app

STARTUP_SECONDS = 30.0
Result = TypeVar("Result")


class RunningWatchkeeper:
    """One Watchkeeper process: its app, its address, and a way into its event loop."""

    def __init__(self, app: FastAPI, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.url = url
        self._loop = loop

    async def call(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        """Runs ``coroutine`` on the server's event loop (where its store lives)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def flush(self) -> None:
        """Stores every recorded minute now, the current one included."""
        await self.call(self.app.state.request_tracking.flusher.flush())


@asynccontextmanager
async def serve_watchkeeper(settings: Settings, port: int = 0) -> AsyncIterator[RunningWatchkeeper]:
    """A started Watchkeeper on ``settings``' store; stopped (minutes flushed) afterwards.

    ``port`` 0 takes a free one; a restart names the port the one before listened on.
    """
    app = create_app(settings)
    config = uvicorn.Config(
        app, http=limited_protocol(settings), lifespan="on", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    listener = socket.socket()
    # A restart on the same port must not wait for the old connections' TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    loop = asyncio.new_event_loop()

    def run() -> None:
        try:
            loop.run_until_complete(server.serve(sockets=[listener]))
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="watchkeeper", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        assert thread.is_alive(), "Watchkeeper stopped while starting (see the log above)"
        assert time.monotonic() < deadline, "Watchkeeper did not start in time"
        await asyncio.sleep(0.01)
    host, port = listener.getsockname()
    try:
        yield RunningWatchkeeper(app, f"http://{host}:{port}", loop)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, STARTUP_SECONDS)
        listener.close()
        assert not thread.is_alive(), "Watchkeeper did not stop in time"
