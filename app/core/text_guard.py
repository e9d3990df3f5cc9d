"""Refuses requests whose URL or form fields hold text no store can keep faithfully.

A NUL character makes PostgreSQL raise and silently truncates a SQLite filter; invalid
UTF-8 cannot be compared with stored text at all. Both are refused here with one clear
400, before routing, so no endpoint (present or future) ever sees them. JSON bodies are
checked by the request schemas (``app.schemas.base``); form bodies, small and already
bounded by the body limit outside this middleware, are checked here.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_FORM = b"application/x-www-form-urlencoded"


def _problem(where: str, raw: bytes) -> str | None:
    """Why the percent-encoded ``raw`` is unusable text, or None."""
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    if b"\x00" in decoded:
        return f"The {where} must not contain NUL characters"
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return f"The {where} must be valid UTF-8 text"
    return None


def _path_problem(scope: Scope) -> str | None:
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        return _problem("path", raw.partition(b"?")[0])
    return "The path must not contain NUL characters" if "\x00" in scope["path"] else None


def _is_form(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == _FORM)
    return False


class TextGuardMiddleware:
    """400 for NUL or invalid UTF-8 in the path, the query string or a form body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _path_problem(scope) or _problem("query string", scope.get("query_string", b""))
        if problem is None and _is_form(scope):
            body, receive = await _buffered(receive)
            problem = _problem("form body", body)
        if problem is not None:
            await JSONResponse({"detail": problem}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that hands it on as one message."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            replay: Message = message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            replay = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    delivered = False

    async def replaying() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return replay

    return b"".join(chunks), replaying
