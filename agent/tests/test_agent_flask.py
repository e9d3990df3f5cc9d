"""The Flask integration in a real Flask app, through Flask's WSGI test client."""

from __future__ import annotations

import flask
import pytest
from conftest import TOKEN, Receiver
from watchkeeper_agent import UNMATCHED_ROUTE, Agent
from watchkeeper_agent.flask import init_app

Key = tuple[str, str, str]


def build_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/items/<int:item_id>")
    def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.post("/items")
    def create_item() -> tuple[dict[str, str], int]:
        return {}, 201

    @app.get("/missing/<name>")
    def missing(name: str) -> str:
        flask.abort(404)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("broken on purpose")

    return app


def counts(agent: Agent) -> dict[Key, int]:
    return {(b.route, b.method, b.status_class): b.count for b in agent.recorder.drain(final=True)}


@pytest.fixture
def agent() -> Agent:
    return Agent.configure(environ={}, service="shop")


class TestFlask:
    def test_requests_are_named_by_the_matched_rule(self, agent: Agent) -> None:
        app = build_app()
        init_app(app, agent)
        client = app.test_client()
        for item_id in (1, 2, 3):
            assert client.get(f"/items/{item_id}").status_code == 200
        client.post("/items")
        client.get("/missing/x")
        client.get("/nope")
        client.delete("/items/1")  # 405: no rule for the method
        assert counts(agent) == {
            ("/items/<int:item_id>", "GET", "2xx"): 3,
            ("/items", "POST", "2xx"): 1,
            ("/missing/<name>", "GET", "4xx"): 1,
            (UNMATCHED_ROUTE, "GET", "4xx"): 1,
            (UNMATCHED_ROUTE, "DELETE", "4xx"): 1,
        }

    def test_an_unhandled_exception_is_a_server_error(self, agent: Agent) -> None:
        app = build_app()
        init_app(app, agent)
        assert app.test_client().get("/boom").status_code == 500
        assert counts(agent) == {("/boom", "GET", "5xx"): 1}

    def test_a_propagated_exception_is_a_server_error_of_its_rule(self, agent: Agent) -> None:
        app = build_app()
        app.testing = True  # PROPAGATE_EXCEPTIONS: no response is made, the error escapes
        init_app(app, agent)
        with pytest.raises(RuntimeError, match="broken on purpose"):
            app.test_client().get("/boom")
        assert counts(agent) == {("/boom", "GET", "5xx"): 1}

    def test_an_error_handler_s_answer_is_what_is_counted(self, agent: Agent) -> None:
        app = build_app()

        @app.errorhandler(500)
        def unavailable(error: Exception) -> tuple[str, int]:
            return "try later", 503

        init_app(app, agent)
        assert app.test_client().get("/boom").status_code == 503
        [bucket] = agent.recorder.drain(final=True)
        assert (bucket.route, bucket.status_class, bucket.count) == ("/boom", "5xx", 1)

    def test_a_request_context_pushed_by_hand_is_not_a_request(self, agent: Agent) -> None:
        app = build_app()
        init_app(app, agent)
        with app.test_request_context("/items/1"):
            app.process_response(flask.Response("made by hand"))
        assert counts(agent) == {}

    def test_an_early_answer_from_another_hook_is_still_timed(self, agent: Agent) -> None:
        app = build_app()

        @app.before_request
        def maintenance() -> tuple[str, int]:
            return "down for maintenance", 503

        init_app(app, agent)
        app.test_client().get("/items/1", headers={"X-Request-ID": "req-1"})
        [bucket] = agent.recorder.drain(final=True)
        assert (bucket.route, bucket.status_class, bucket.count) == (
            "/items/<int:item_id>",
            "5xx",
            1,
        )
        assert bucket.exemplars[0].request_id == "req-1"
        assert bucket.sum_ms >= 0.0

    def test_configured_from_options_it_ships_to_watchkeeper(self, receiver: Receiver) -> None:
        app = build_app()
        agent = init_app(app, url=receiver.url, token=TOKEN, service="flask-shop", interval_s=3600)
        assert app.extensions["watchkeeper_agent"] is agent
        client = app.test_client()
        for item_id in range(5):
            client.get(f"/items/{item_id}")
        agent.close()
        assert receiver.requests() == 5
        assert {batch["service"] for batch in receiver.stored.values()} == {"flask-shop"}
