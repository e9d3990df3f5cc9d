"""Logging set-up and the one-line-per-request access log with a request id.

The access log is a pure ASGI middleware: it reads the route the router already matched
(so the line names ``/issues/{issue_id}``, not the raw path) and never touches bodies,
which keeps secrets in query strings or payloads out of the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The agent's: the access log names a request exactly as the request metrics do.
from watchkeeper_agent.middleware import route_template

from app.core.config import LogFormat, Settings

access_logger = logging.getLogger("watchkeeper.access")
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_REQUEST_ID_HEADER = b"x-request-id"
# A caller-supplied id is echoed into logs, so only a short, plain one is trusted.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class TextFormatter(logging.Formatter):
    """``time level logger message key=value...`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = f"{stamp} {record.levelname:<7} {record.name} {record.getMessage()}"
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            line += f" request_id={request_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _ACCESS_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _ProcessLog(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler of the process: every logger's lines, uvicorn's included, in one format."""


def setup_logging(settings: Settings) -> None:
    """Send every log line of the process to stderr in the configured format.

    The handler sits on the root logger, so uvicorn's lines, library warnings and
    tracebacks come out as one JSON object per line too when ``log_format`` is ``json``.
    Handlers others installed (a test's capture, say) are left in place.
    """
    handler = _ProcessLog(sys.stderr)
    formatter = JsonFormatter() if settings.log_format is LogFormat.JSON else TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _ProcessLog)] + [handler]
    root.setLevel(logging.WARNING)  # libraries: warnings and worse
    level = settings.log_level.upper()
    for ours in ("watchkeeper", "uvicorn"):
        logger = logging.getLogger(ours)
        logger.handlers.clear()
        logger.setLevel(level)
        logger.propagate = True
    logging.captureWarnings(True)


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class AccessLogMiddleware:
    """Gives each request an id (``X-Request-ID``) and logs one line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        root_path = scope.get("root_path", "")
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((_REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method, route = scope["method"], route_template(scope, root_path)
            access_logger.info(
                "%s %s %s %.2fms",
                method,
                route,
                status,
                duration_ms,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)
