"""The Django integration: ``"watchkeeper_agent.django.WatchkeeperMiddleware"`` in
``MIDDLEWARE`` (first, so that it times the other middleware too).

A request is counted under ``request.resolver_match.route``, the pattern Django matched
(``items/<int:pk>/``, shown with a leading slash like every other integration's routes),
never the raw path; a request no pattern matched is counted in the one unmatched bucket.
Django turns exceptions into responses before they reach a middleware, so the status is
the response's own.

Options come from an optional ``WATCHKEEPER`` dict in the settings (the keys of
:class:`AgentOptions`), completed from the environment. Every middleware instance in a
process shares one agent (:func:`get_agent`), since Django may build its handler more than
once. The middleware works under WSGI and ASGI alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from watchkeeper_agent.agent import Agent
from watchkeeper_agent.vocabulary import UNMATCHED_ROUTE

_agent: Agent | None = None
_agent_lock = threading.Lock()


def get_agent() -> Agent:
    """The process's agent, built from ``settings.WATCHKEEPER`` on first use."""
    global _agent
    with _agent_lock:
        if _agent is None:
            _agent = Agent.configure(**getattr(settings, "WATCHKEEPER", {}))
        return _agent


def route_of(request: HttpRequest) -> str:
    """The pattern that served ``request``, or the unmatched bucket."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not route:
        return UNMATCHED_ROUTE
    # re_path patterns are regular expressions: they are shown as written.
    return str(route) if route.startswith("^") else "/" + route


class WatchkeeperMiddleware:
    """Times each request and counts it in the process's agent."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self._record = get_agent().record

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        status = 500
        try:
            response: HttpResponseBase = self.get_response(request)
            status = response.status_code
            return response
        finally:
            self._count(request, status, started)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        status = 500
        try:
            pending: Awaitable[HttpResponseBase] = self.get_response(request)
            response = await pending
            status = response.status_code
            return response
        finally:
            self._count(request, status, started)

    def _count(self, request: HttpRequest, status: int, started: float) -> None:
        self._record(
            route_of(request),
            request.method or "GET",
            status,
            (time.perf_counter() - started) * 1000.0,
            request.META.get("HTTP_X_REQUEST_ID"),
        )
