"""The Flask integration: ``watchkeeper_agent.flask.init_app(app)``.

Three request hooks: the first ``before_request`` function notes the time, an
``after_request`` function notes the status of the response Flask is about to send
(error handlers included: an unhandled exception's 500 passes through it too), and a
``teardown_request`` function counts the request under ``request.url_rule.rule``, the rule
Flask matched (``/items/<int:item_id>``), never the raw path. A request no rule matched
(404, 405) is counted in the one unmatched bucket.
"""

from __future__ import annotations

import time
from typing import Final, Unpack

from flask import Flask, Response, request

from watchkeeper_agent.agent import Agent
from watchkeeper_agent.config import AgentOptions
from watchkeeper_agent.vocabulary import UNMATCHED_ROUTE

_STARTED: Final = "watchkeeper_agent.started"
_STATUS: Final = "watchkeeper_agent.status"


def init_app(app: Flask, agent: Agent | None = None, **options: Unpack[AgentOptions]) -> Agent:
    """Count every request ``app`` serves; returns the agent (also ``app.extensions``)."""
    if agent is None:
        agent = Agent.configure(**options)
    record = agent.record
    clock = time.perf_counter

    def note_start() -> None:
        request.environ[_STARTED] = clock()

    def note_status(response: Response) -> Response:
        request.environ[_STATUS] = response.status_code
        return response

    def count(error: BaseException | None) -> None:
        environ = request.environ
        started = environ.get(_STARTED)
        if started is None:  # a request context pushed by hand, not a served request
            return
        rule = request.url_rule
        record(
            UNMATCHED_ROUTE if rule is None else rule.rule,
            request.method,
            500 if error is not None else environ.get(_STATUS, 500),
            (clock() - started) * 1000.0,
            environ.get("HTTP_X_REQUEST_ID"),
        )

    # First, so a before_request function answering early cannot skip the clock.
    app.before_request_funcs.setdefault(None, []).insert(0, note_start)
    app.after_request(note_status)
    app.teardown_request(count)
    app.extensions["watchkeeper_agent"] = agent
    return agent
