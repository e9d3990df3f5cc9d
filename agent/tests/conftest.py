"""A stand-in for Watchkeeper's ingest endpoint: a stdlib HTTP server on loopback.

It stores each batch once by its id, as the server promises to, remembers every attempt,
and answers the statuses a test scripts (202 once the script runs out). ``stop()`` takes it
off the network (connections are refused) and ``start()`` brings it back on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

INGEST_PATH = "/api/v1/ingest/requests"
TOKEN = "wk_ingest-test-token"


@dataclass
class Attempt:
    batch_id: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    port: int = 0
    statuses: list[int] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answer(self.path, body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            if path != INGEST_PATH:
                return 404
            document = json.loads(body)
            self.attempts.append(Attempt(document["batch_id"], body, headers))
            status = self.statuses.pop(0) if self.statuses else 202
            if 200 <= status < 300:
                self.stored.setdefault(document["batch_id"], document)
            return status

    def buckets(self) -> list[dict[str, Any]]:
        """Every stored bucket, deltas not yet added up."""
        with self._lock:
            return [bucket for batch in self.stored.values() for bucket in batch["buckets"]]

    def requests(self) -> int:
        return sum(bucket["count"] for bucket in self.buckets())

    def dropped(self) -> int:
        with self._lock:
            return sum(batch["dropped_requests"] for batch in self.stored.values())

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the receiver did not get what was expected in time")
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()
