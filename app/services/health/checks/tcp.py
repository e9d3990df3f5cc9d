"""The TCP check: can a connection to ``host:port`` be opened, and how long does it take.

For a dependency Watchkeeper has no client for (a message broker, an SMTP relay, a
database behind a proxy), an open port is the least a client needs. The latency is the
connect itself; nothing is sent, and the connection is closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator

from app.schemas.targets import NetworkTarget, require_scheme
from app.services.health.checks.base import CheckKind, Finding, elapsed_ms, one_line
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentStatus


class TcpTarget(NetworkTarget):
    """A port that must accept connections, written ``tcp://host:port``."""

    kind: Literal["tcp"] = "tcp"

    @field_validator("url")
    @classmethod
    def _host_and_port(cls, url: str) -> str:
        require_scheme(url, ("tcp",))
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:  # .port raises on a number out of range
            raise ValueError("expected tcp://host:port")
        return url

    @property
    def host(self) -> str:
        """The host to connect to."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The port to connect to."""
        return urlsplit(self.url).port or 0


def _reason(error: OSError) -> str:
    """Why a connection failed, in words: "connection refused", "cannot resolve the host"."""
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror})"
    if error.errno is not None:
        # asyncio's own text ("Connect call failed ('10.0.0.5', 5432)") repeats the address.
        return os.strerror(error.errno).lower()
    return one_line(str(error))


async def probe(target: TcpTarget, context: CheckContext) -> Finding:
    """Open a connection to the target's port, time it, and close it."""
    where = {"host": target.host, "port": target.port}
    started = time.perf_counter()
    try:
        _, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as error:
        message = f"cannot connect to {target.host}:{target.port}: {_reason(error)}"
        details = {**where, "error": type(error).__name__}
        return Finding(ComponentStatus.UNHEALTHY, None, message, details)
    latency_ms = elapsed_ms(started)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()  # a reset while we hang up says nothing about the port
    message = f"connected to {target.host}:{target.port} in {latency_ms:.1f} ms"
    return Finding(ComponentStatus.HEALTHY, latency_ms, message, where)


KIND = CheckKind(
    target=TcpTarget,
    probe=probe,
    failures=(OSError,),
    component_type="component",
)
