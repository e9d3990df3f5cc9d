"""Oversized request heads are refused by the server itself, while they arrive.

A real uvicorn server runs ``HeaderLimitedProtocol`` in a thread of the test process with a
tiny Starlette app (the protocol knows nothing of Watchkeeper's), and the tests speak raw
HTTP/1.1 to it over sockets, the way an attacker would.
"""

from __future__ import annotations

import gc
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core.config import Settings
from app.core.http_limits import limited_protocol

LIMIT = 32 * 1024
COUNT = 100
TIMEOUT = 10.0
MiB = 1024 * 1024


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"headers": len(request.headers), "path": len(request.url.path)})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """A uvicorn server with the limits, on a free loopback port, for the whole module."""
    protocol = limited_protocol(Settings(max_header_bytes=LIMIT, max_header_count=COUNT))
    config = uvicorn.Config(
        Starlette(routes=[Route("/{path:path}", echo)]),
        http=protocol,
        log_level="critical",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield listener.getsockname()[1]
    server.should_exit = True
    thread.join(TIMEOUT)
    listener.close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def head(target: str = "/", headers: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "host: t"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (with Content-Length) read from ``conn``: status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(conn)
    raw_head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = raw_head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    while len(body) < int(headers["content-length"]):
        body += _recv(conn)
    return int(status_line.split()[1]), headers, body


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    assert chunk, "the server closed the connection before answering"
    return chunk


def is_closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(port) as conn:
        conn.sendall(request)
        return read_response(conn)


def padded_headers(total: int, count: int) -> list[tuple[str, str]]:
    """``count`` headers after Host whose names and values, with ``/`` and Host, total ``total``."""
    headers = [(f"x-h{i:03}", "v") for i in range(count - 1)]
    used = len("/") + len("host") + len("t") + sum(len(n) + len(v) for n, v in headers)
    headers.append(("x-pad", "p" * (total - used - len("x-pad"))))
    return headers


class TestWithinTheLimits:
    def test_ordinary_request_is_served(self, port: int) -> None:
        status, _, body = exchange(port, head("/ok", [("accept", "*/*")]))

        assert status == 200
        assert json.loads(body) == {"headers": 2, "path": 3}

    def test_request_right_at_both_limits_trickling_in_is_served(self, port: int) -> None:
        request = head("/", padded_headers(LIMIT, COUNT - 1))
        with connect(port) as conn:
            for start in range(0, len(request), 1024):  # many reads: the raw count runs too
                conn.sendall(request[start : start + 1024])
                time.sleep(0.002)
            status, _, body = read_response(conn)

        assert status == 200
        assert json.loads(body)["headers"] == COUNT

    def test_limits_apply_to_each_request_of_a_connection(self, port: int) -> None:
        request = head("/", [("x-big", "b" * (LIMIT * 2 // 3))])
        with connect(port) as conn:
            statuses = []
            for _ in range(3):
                conn.sendall(request)
                statuses.append(read_response(conn)[0])

        assert statuses == [200, 200, 200]


class TestOverTheLimits:
    def assert_refused(self, conn: socket.socket) -> dict[str, Any]:
        status, headers, body = read_response(conn)
        assert status == 431
        assert headers["connection"] == "close"
        assert headers["content-type"] == "application/json"
        assert is_closed(conn)
        detail: dict[str, Any] = json.loads(body)
        return detail

    def test_one_byte_over_is_refused(self, port: int) -> None:
        with connect(port) as conn:
            conn.sendall(head("/", padded_headers(LIMIT + 1, COUNT - 1)))

            detail = self.assert_refused(conn)

        assert detail == {"detail": f"Request target and headers exceed the limit of {LIMIT} bytes"}

    def test_one_header_too_many_is_refused(self, port: int) -> None:
        with connect(port) as conn:
            conn.sendall(head("/", [(f"x-h{i}", "v") for i in range(COUNT)]))

            detail = self.assert_refused(conn)

        assert detail == {"detail": f"Requests may have at most {COUNT} headers"}

    def test_huge_url_is_refused(self, port: int) -> None:
        with connect(port) as conn:
            conn.sendall(head("/" + "u" * LIMIT))

            self.assert_refused(conn)

    def test_64_mb_header_is_refused_before_it_is_sent_and_never_held(self, port: int) -> None:
        chunk = b"a" * (64 * 1024)
        gc.collect()
        resident_before = psutil.Process().memory_info().rss
        started = time.monotonic()
        sent = 0
        with connect(port) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nhost: t\r\nx-big: ")
            try:
                while sent < 64 * MiB and not select.select([conn], [], [], 0)[0]:
                    conn.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed while we were still sending: what we want

            self.assert_refused(conn)

        assert time.monotonic() - started < TIMEOUT
        assert sent < 64 * MiB, "the server waited for the whole header"
        growth = psutil.Process().memory_info().rss - resident_before
        assert growth < 16 * MiB, f"resident memory grew by {growth / MiB:.1f} MiB"
