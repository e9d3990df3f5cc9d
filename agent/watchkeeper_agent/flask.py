"""The Flask integration: ``watchkeeper_agent.flask.init_app(app)``.

A wrapper around ``app.wsgi_app`` notes the time, and an ``after_request`` function counts
the response Flask is about to send (error handlers included: an unhandled exception's 500
passes through it too) under ``request.url_rule.rule``, the rule Flask matched
(``/items/<int:item_id>``), never the raw path. A request no rule matched (404, 405) is
counted in the one unmatched bucket. An exception that propagates without a response
(``PROPAGATE_EXCEPTIONS``, as under ``app.testing``) is counted as a 500 by the wrapper,
under the rule Flask's ``got_request_exception`` signal saw.

One hook only, on purpose: Flask checks every hook function for a coroutine on every
request, which costs more than the counting itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Unpack

from flask import Flask, Response, got_request_exception, request

from watchkeeper_agent.agent import Agent
from watchkeeper_agent.config import AgentOptions
from watchkeeper_agent.vocabulary import UNMATCHED_ROUTE

_STARTED: Final = "watchkeeper_agent.started"
_FAILED_RULE: Final = "watchkeeper_agent.failed_rule"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def init_app(app: Flask, agent: Agent | None = None, **options: Unpack[AgentOptions]) -> Agent:
    """Count every request ``app`` serves; returns the agent (also ``app.extensions``)."""
    if agent is None:
        agent = Agent.configure(**options)
    record = agent.record
    clock = time.perf_counter
    serve: WsgiApp = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[_STARTED] = clock()
        try:
            return serve(environ, start_response)
        except BaseException:
            started = environ.pop(_STARTED, None)
            if started is not None:  # no response was made, so none was counted
                record(
                    environ.get(_FAILED_RULE, UNMATCHED_ROUTE),
                    environ.get("REQUEST_METHOD", "GET").upper(),
                    500,
                    (clock() - started) * 1000.0,
                    environ.get("HTTP_X_REQUEST_ID"),
                )
            raise

    def count(response: Response) -> Response:
        # One proxy lookup: every attribute read through ``request`` resolves it again.
        served = request._get_current_object()  # type: ignore[attr-defined]
        environ = served.environ
        started = environ.pop(_STARTED, None)
        if started is not None:  # None: a request context pushed by hand
            rule = served.url_rule
            record(
                UNMATCHED_ROUTE if rule is None else rule.rule,
                served.method,
                response.status_code,
                (clock() - started) * 1000.0,
                environ.get("HTTP_X_REQUEST_ID"),
            )
        return response

    def note_failed_rule(sender: Flask, **extra: object) -> None:
        served = request._get_current_object()  # type: ignore[attr-defined]
        if served.url_rule is not None:
            served.environ[_FAILED_RULE] = served.url_rule.rule

    app.wsgi_app = timed  # type: ignore[method-assign]
    app.after_request(count)
    got_request_exception.connect(note_failed_rule, app, weak=False)
    app.extensions["watchkeeper_agent"] = agent
    return agent
