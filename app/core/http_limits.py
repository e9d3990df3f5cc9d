"""Bounds on the request head, enforced by the HTTP parser while the bytes arrive.

uvicorn limits neither the size nor the number of request headers, and httptools keeps each
header in memory until its last byte has come: a single 64 MB header was held whole before
the application saw anything. ``HeaderLimitedProtocol`` is uvicorn's httptools protocol
counting as it parses; it answers ``431 Request Header Fields Too Large`` and closes the
connection as soon as

* the request target plus every header name and value exceed ``max_header_bytes``, or
* there are more than ``max_header_count`` headers.

``limited_protocol(settings)`` is the class with the configured limits, for
``uvicorn.run(http=...)`` in ``watchkeeper serve``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.core.config import Settings

# What a head may hold besides the counted bytes: ": " and CRLF per header line; the
# method, spaces, "HTTP/1.1" and CRLFs of the request line and the blank line after it.
_LINE_SYNTAX = 4
_REQUEST_LINE_SYNTAX = 32


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a head that passed a limit."""


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized request heads with 431."""

    max_header_bytes: ClassVar[int] = 32 * 1024
    max_header_count: ClassVar[int] = 100

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_open = False  # from the head's first byte to its blank line
        self._head_bytes = 0  # target, header names and values seen so far
        self._header_count = 0
        self._head_received = 0  # raw bytes of reads that began and ended inside the head

    def data_received(self, data: bytes) -> None:
        # HttpToolsProtocol.data_received, except that httptools reports the HeadTooLarge
        # raised in a callback as a parse error, which must become a 431, not a 400.
        self._unset_keepalive_if_required()
        head_was_open = self._head_open
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, HeadTooLarge):
                self._refuse(str(error.__context__))
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # httptools hands a header over only once it has ended, so the callbacks cannot see
        # one still arriving: the raw bytes bound it. A read in which the head began is not
        # counted (part of it may be an earlier request), so at most one read goes unseen.
        if self._head_open and head_was_open:
            self._head_received += len(data)
            allowance = (
                self.max_header_bytes + self.max_header_count * _LINE_SYNTAX + _REQUEST_LINE_SYNTAX
            )
            if self._head_received > allowance:
                self._refuse(self._too_many_bytes())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = self._header_count = self._head_received = 0

    def on_url(self, url: bytes) -> None:
        self._count_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_header_count:
            raise HeadTooLarge(f"Requests may have at most {self.max_header_count} headers")
        self._count_bytes(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def _count_bytes(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            raise HeadTooLarge(self._too_many_bytes())

    def _too_many_bytes(self) -> str:
        return f"Request target and headers exceed the limit of {self.max_header_bytes} bytes"

    def _refuse(self, detail: str) -> None:
        self.logger.warning("Refused a request head: %s", detail)
        body = json.dumps({"detail": detail}).encode()
        head = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        # Closing stops reading at once: the rest of the head is never buffered.
        self.transport.close()


def limited_protocol(settings: Settings) -> type[HeaderLimitedProtocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with the configured limits."""

    class Configured(HeaderLimitedProtocol):
        max_header_bytes = settings.max_header_bytes
        max_header_count = settings.max_header_count

    return Configured
