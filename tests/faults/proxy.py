"""A TCP proxy between the service and PostgreSQL that plays the store's faults on demand.

``freeze`` stops forwarding in both directions but keeps every socket open, as a server
stopped with SIGSTOP (or a network that drops packets) looks to its clients: connections
are accepted, bytes are sent, nothing comes back. ``thaw`` forwards what was held and goes
on. ``cut`` closes every connection at once, as a crash or a restart does. ``refuse``
answers each new connection with an error, as PostgreSQL does while it starts up or shuts
down, or when it has no connection slot left, until ``thaw``.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from enum import Enum

from sqlalchemy.engine import make_url

_SSL_REQUEST_CODE = 80877103
_CHUNK = 65536


class Mode(Enum):
    FLOWING = "flowing"
    FROZEN = "frozen"
    REFUSING = "refusing"


def _error_response(sqlstate: str, message: str) -> bytes:
    """A PostgreSQL ErrorResponse message, severity FATAL."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class StoreProxy:
    """Listens on a loopback port and forwards to ``upstream`` while flowing."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = Mode.FLOWING
        self._refusal = b""
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()

    @classmethod
    def in_front_of(cls, url: str) -> StoreProxy:
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432)

    def url_through(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        via = make_url(url).set(host="127.0.0.1", port=self.port)
        return via.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()
        if self._server is not None:
            await self._server.wait_closed()

    def freeze(self) -> None:
        """Stops forwarding; every connection stays open and silent."""
        self.mode = Mode.FROZEN
        self._flowing.clear()

    def refuse(self, sqlstate: str, message: str) -> None:
        """New connections get this error from the "server" after their start-up message."""
        self.mode = Mode.REFUSING
        self._refusal = _error_response(sqlstate, message)

    def thaw(self) -> None:
        """Forwards again, what was held first."""
        self.mode = Mode.FLOWING
        self._flowing.set()

    async def cut(self) -> None:
        """Closes every open connection, client and server side."""
        links = list(self._links)
        for link in links:
            link.cancel()
        await asyncio.gather(*links, return_exceptions=True)

    @property
    def connections(self) -> int:
        return len(self._links)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            if self.mode is Mode.REFUSING:
                await self._answer_start_up(reader, writer, self._refusal)
                return
            await self._flowing.wait()
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(self._pipe(reader, upstream_writer))
                pipes.create_task(self._pipe(upstream_reader, writer))
        except (OSError, asyncio.CancelledError, ExceptionGroup):
            pass  # either side went away, or the test cut the connection
        finally:
            for end in (writer, upstream_writer):
                if end is not None:
                    end.transport.abort()
            self._links.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(_CHUNK):
            await self._flowing.wait()
            sink.write(data)
            await sink.drain()
        sink.transport.abort()

    @staticmethod
    async def _answer_start_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        length, code = struct.unpack("!II", await reader.readexactly(8))
        if code == _SSL_REQUEST_CODE:  # no TLS here; the client goes on in the clear
            writer.write(b"N")
            length, _ = struct.unpack("!II", await reader.readexactly(8))
        await reader.readexactly(length - 8)  # the rest of the start-up message
        writer.write(answer)
        with contextlib.suppress(OSError):
            await writer.drain()
