"""Real dependencies for the check tests: service URLs, a closed port, a port that accepts
connections, a local HTTP server that answers, fails, hangs or talks garbage (plain or TLS),
and a MockupDB MongoDB server.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme
from mockupdb import MockupDB

POSTGRES_URL_VARIABLE = "WATCHKEEPER_TEST_POSTGRES_URL"
REDIS_URL_VARIABLE = "WATCHKEEPER_TEST_REDIS_URL"


def _service_url(variable: str) -> str:
    url = os.environ.get(variable)
    if url:
        return url
    reason = f"set {variable} to run the checks against the real service"
    if os.environ.get("CI"):
        pytest.fail(f"CI must set {variable}")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL the tests check (skipped on a laptop without it, failed under CI)."""
    return _service_url(POSTGRES_URL_VARIABLE)


@pytest.fixture
def redis_url() -> str:
    """The Redis the tests check (skipped on a laptop without it, failed under CI)."""
    return _service_url(REDIS_URL_VARIABLE)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: bound once to learn a free number, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@asynccontextmanager
async def tcp_listener() -> AsyncIterator[int]:
    """A loopback port that accepts connections (and hangs up at once), while open."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def open_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections for the test's length."""
    async with tcp_listener() as port:
        yield port


HEALTH_DOCUMENT = {"status": "ok", "version": 3, "checks": [{"name": "db", "status": "pass"}]}


class LocalHttpServer:
    """A tiny HTTP/1.1 server on loopback whose paths behave like healthy and broken APIs.

    ``/ok`` JSON 200 · ``/text`` plain 200 · ``/fail`` 500 · ``/slow?ms=N`` 200 after N ms ·
    ``/hang`` never answers · ``/garbage`` writes bytes that are not HTTP and closes.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the client gave up (a check that timed out, a rejected certificate)
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers are not needed
        path, _, query = request_line.split(" ")[1].partition("?")
        if path == "/hang":
            await asyncio.Event().wait()
        if path == "/garbage":
            writer.write(b"\x00\x17 certainly not HTTP \xff\r\n\r\n")
            await writer.drain()
            return
        if path == "/slow":
            await asyncio.sleep(int(query.removeprefix("ms=")) / 1000)
        status, content_type, body = {
            "/ok": (200, "application/json", json.dumps(HEALTH_DOCUMENT)),
            "/slow": (200, "application/json", json.dumps(HEALTH_DOCUMENT)),
            "/text": (200, "text/plain", "all systems nominal"),
            "/fail": (500, "text/plain", "internal error"),
        }.get(path, (404, "text/plain", "no such page"))
        payload = body.encode()
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        await writer.drain()


@pytest.fixture
async def http_server() -> AsyncIterator[LocalHttpServer]:
    """A plain-HTTP local server (see ``LocalHttpServer`` for its paths)."""
    server = LocalHttpServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    """A private CA nobody trusts by default, as a self-signed deployment would have."""
    return trustme.CA()


@pytest.fixture
async def tls_server(
    certificate_authority: trustme.CA,
) -> AsyncIterator[Callable[..., Any]]:
    """Start HTTPS servers whose certificate the test shapes (e.g. ``not_after``)."""
    servers: list[LocalHttpServer] = []

    async def start(**certificate_options: Any) -> LocalHttpServer:
        certificate = certificate_authority.issue_cert("127.0.0.1", **certificate_options)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        server = LocalHttpServer(context)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def ca_file(certificate_authority: trustme.CA, tmp_path: Any) -> str:
    """The private CA's certificate as a PEM file, for targets that trust it."""
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return str(path)


PRIMARY_HELLO = {"isWritablePrimary": True, "maxWireVersion": 21, "minWireVersion": 0}


def server_status(current: int, available: int) -> dict[str, Any]:
    """A serverStatus reply with the given connection figures."""
    return {
        "version": "7.0.12",
        "uptime": 86400,
        "connections": {"current": current, "available": available},
        "opcounters": {"insert": 10, "query": 250, "update": 5, "delete": 1, "command": 900},
    }


@pytest.fixture
def mongo_server() -> Iterator[Callable[..., MockupDB]]:
    """Start MockupDB servers answering hello, ping and serverStatus as the test crafts them."""
    servers: list[MockupDB] = []

    def start(
        *, hello: dict[str, Any] | None = None, status: dict[str, Any] | None = None
    ) -> MockupDB:
        hello_reply = {**PRIMARY_HELLO, **(hello or {})}
        # The driver's own handshake and the check's explicit hello must tell the same story.
        server = MockupDB(auto_ismaster=hello_reply)
        server.autoresponds("hello", hello_reply)
        server.autoresponds("ping")
        server.autoresponds("serverStatus", status or server_status(12, 838))
        server.run()
        servers.append(server)
        return server

    yield start
    for server in servers:
        # MockupDB's accept loop polls once a second, so stop() blocks up to 1 s; let it
        # finish in the background instead of adding a second to every test.
        threading.Thread(target=server.stop, daemon=True).start()
