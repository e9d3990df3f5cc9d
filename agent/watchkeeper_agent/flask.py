"""The Flask integration: ``watchkeeper_agent.flask.init_app(app)``.

The first ``before_request`` function notes the time, and an ``after_request`` function
counts the response Flask is about to send (error handlers included: an unhandled
exception's 500 passes through it too) under ``request.url_rule.rule``, the rule Flask
matched (``/items/<int:item_id>``), never the raw path; an exception that propagates
without a response is counted as a 500 at teardown. A request no rule matched (404, 405)
is counted in the one unmatched bucket.
"""

from __future__ import annotations

import time
from typing import Final, Unpack

from flask import Flask, Response, request

from watchkeeper_agent.agent import Agent
from watchkeeper_agent.config import AgentOptions
from watchkeeper_agent.vocabulary import UNMATCHED_ROUTE

_STARTED: Final = "watchkeeper_agent.started"


def init_app(app: Flask, agent: Agent | None = None, **options: Unpack[AgentOptions]) -> Agent:
    """Count every request ``app`` serves; returns the agent (also ``app.extensions``)."""
    if agent is None:
        agent = Agent.configure(**options)
    record = agent.record
    clock = time.perf_counter

    def note_start() -> None:
        request.environ[_STARTED] = clock()

    def count_as(status: int) -> None:
        # One proxy lookup: every attribute read through ``request`` resolves it again.
        served = request._get_current_object()  # type: ignore[attr-defined]
        started = served.environ.pop(_STARTED, None)
        if started is None:  # a request context pushed by hand, or counted already
            return
        rule = served.url_rule
        record(
            UNMATCHED_ROUTE if rule is None else rule.rule,
            served.method,
            status,
            (clock() - started) * 1000.0,
            served.environ.get("HTTP_X_REQUEST_ID"),
        )

    def count(response: Response) -> Response:
        count_as(response.status_code)
        return response

    def count_unanswered(error: BaseException | None) -> None:
        # An exception no handler turned into a response (propagated): a 500 all the same.
        if error is not None:
            count_as(500)

    # First, so a before_request function answering early cannot skip the clock.
    app.before_request_funcs.setdefault(None, []).insert(0, note_start)
    app.after_request(count)
    app.teardown_request(count_unanswered)
    app.extensions["watchkeeper_agent"] = agent
    return agent
