"""Shipping to Watchkeeper: the batch format, retries that keep the batch id, the memory
bound and its dropped counts, and an app that never notices Watchkeeper is away."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import time
from typing import Unpack

import pytest
from conftest import INGEST_PATH, TOKEN, Receiver
from watchkeeper_agent import Agent, AgentOptions, QuantileSketch, __version__

MINUTE = 1_700_000_040.0  # 2023-11-14T22:14:00Z


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shipping_agent(
    address: str, clock: FrozenClock | None = None, **tuning: Unpack[AgentOptions]
) -> Agent:
    """An agent whose thread would wait an hour: the tests ship with ``flush()``."""
    options: AgentOptions = {
        "url": address,
        "token": TOKEN,
        "service": "shop",
        "interval_s": 3600.0,
        "timeout_s": 2.0,
        **tuning,
    }
    return Agent.configure(environ={}, wall_clock=clock or FrozenClock(MINUTE + 5), **options)


def nothing_listening() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class TestBatchFormat:
    def test_a_batch_carries_the_minutes_buckets_with_their_sketches(
        self, receiver: Receiver
    ) -> None:
        agent = shipping_agent(receiver.url + "/")
        durations = [12.5, 40.0, 7.25, 300.0]
        for number, duration in enumerate(durations):
            agent.record("/items/{item_id}", "GET", 200, duration, f"req-{number}")
        agent.record("/items", "POST", 503, 2.0, "bad id with spaces")
        assert agent.flush()
        [attempt] = receiver.attempts
        assert attempt.headers["Authorization"] == f"Bearer {TOKEN}"
        assert attempt.headers["Content-Type"] == "application/json"
        batch = json.loads(attempt.body)
        assert len(batch["batch_id"]) == 32 and int(batch["batch_id"], 16) >= 0
        assert batch["service"] == "shop"
        assert batch["agent"] == {"version": __version__, "pid": os.getpid()}
        assert batch["dropped_requests"] == 0
        failed, items = batch["buckets"]  # sorted by route: "/items" first
        sketch = QuantileSketch.from_bytes(base64.b64decode(items.pop("sketch")))
        exact = QuantileSketch.of(durations)
        assert (dict(sketch.bins), sketch.sum, sketch.min) == (dict(exact.bins), 359.75, 7.25)
        assert items == {
            "minute": "2023-11-14T22:14:00Z",
            "route": "/items/{item_id}",
            "method": "GET",
            "status_class": "2xx",
            "count": 4,
            "sum_ms": 359.75,
            "max_ms": 300.0,
            "exemplars": [
                {"duration_ms": 300.0, "request_id": "req-3", "at": "2023-11-14T22:14:05.000000Z"},
                {"duration_ms": 40.0, "request_id": "req-1", "at": "2023-11-14T22:14:05.000000Z"},
                {"duration_ms": 12.5, "request_id": "req-0", "at": "2023-11-14T22:14:05.000000Z"},
                {"duration_ms": 7.25, "request_id": "req-2", "at": "2023-11-14T22:14:05.000000Z"},
            ],
        }
        assert (failed["status_class"], failed["count"]) == ("5xx", 1)
        assert failed["exemplars"][0]["request_id"] is None  # not an id the server accepts

    def test_partial_minutes_ship_as_deltas_that_add_up(self, receiver: Receiver) -> None:
        clock = FrozenClock(MINUTE + 1)
        agent = shipping_agent(receiver.url, clock)
        for second in range(1, 60):
            clock.now = MINUTE + second
            agent.record("/r", "GET", 200, 1.0)
            if second % 10 == 0:
                assert agent.flush()
        assert agent.flush()
        assert len(receiver.stored) == 6  # one batch per shipment, each with its own id
        assert {bucket["minute"] for bucket in receiver.buckets()} == {"2023-11-14T22:14:00Z"}
        assert receiver.requests() == 59

    def test_nothing_recorded_ships_nothing(self, receiver: Receiver) -> None:
        agent = shipping_agent(receiver.url)
        assert agent.flush()
        assert receiver.attempts == []

    def test_a_large_shipment_is_split_into_bounded_batches(self, receiver: Receiver) -> None:
        agent = shipping_agent(receiver.url, max_batch_buckets=10)
        for number in range(25):
            agent.record(f"/r{number}", "GET", 200, 1.0)
        assert agent.flush()
        assert [len(batch["buckets"]) for batch in receiver.stored.values()] == [10, 10, 5]


class TestRetries:
    def test_a_retried_batch_keeps_its_id_and_is_stored_once(self, receiver: Receiver) -> None:
        agent = shipping_agent(receiver.url)
        receiver.statuses = [503, 500]
        agent.record("/r", "GET", 200, 5.0)
        assert not agent.flush()
        agent.record("/r", "GET", 200, 6.0)  # arrives while the first batch waits
        assert not agent.flush()
        assert agent.flush()
        first, second, third = receiver.attempts
        assert first.batch_id == second.batch_id == third.batch_id
        assert first.body == third.body
        assert receiver.requests() == 1
        assert agent.flush()  # the request that came meanwhile goes in a batch of its own
        assert receiver.requests() == 2 and len(receiver.stored) == 2

    def test_a_rejected_token_is_retried_until_it_is_accepted(self, receiver: Receiver) -> None:
        agent = shipping_agent(receiver.url)
        receiver.statuses = [401, 403]
        agent.record("/r", "GET", 200, 5.0)
        assert not agent.flush() and not agent.flush()
        assert agent.flush()
        assert receiver.requests() == 1

    def test_a_refused_batch_is_dropped_and_reported_in_the_next(
        self, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        agent = shipping_agent(receiver.url)
        receiver.statuses = [422]
        for _ in range(3):
            agent.record("/r", "GET", 200, 5.0)
        with caplog.at_level(logging.WARNING, logger="watchkeeper_agent"):
            assert agent.flush()
        assert "refused a batch of 3 requests (422)" in caplog.text
        agent.record("/r", "GET", 200, 5.0)
        assert agent.flush()
        assert (receiver.requests(), receiver.dropped()) == (1, 3)

    def test_nothing_is_lost_or_counted_twice_across_an_outage(self, receiver: Receiver) -> None:
        clock = FrozenClock(MINUTE)
        agent = shipping_agent(receiver.url, clock)
        recorded = 0
        for second in range(0, 600, 2):  # ten minutes, Watchkeeper away in the middle
            clock.now = MINUTE + second
            agent.record(f"/r{second % 3}", "GET", 200, 1.0 + second % 7)
            recorded += 1
            if second == 100:
                receiver.stop()
            if second == 400:
                receiver.start()
            if second % 10 == 0:
                agent.flush()
        assert agent.flush()
        assert (receiver.requests(), receiver.dropped()) == (recorded, 0)


class TestBound:
    def test_past_the_bound_the_oldest_minutes_are_dropped_and_reported(
        self, receiver: Receiver
    ) -> None:
        clock = FrozenClock(MINUTE)
        agent = shipping_agent(receiver.url, clock, max_buckets=4)
        receiver.stop()
        for minute in range(8):  # 2 buckets of 2 requests a minute, 4 buckets kept
            clock.now = MINUTE + minute * 60
            for route in ("/a", "/b"):
                agent.record(route, "GET", 200, 1.0)
                agent.record(route, "GET", 200, 1.0)
            assert not agent.flush()
        receiver.start()
        assert agent.flush()  # the batch made first (minute 0), which may already be stored
        assert agent.flush()  # then what the recorder kept: minutes 6 and 7
        minutes = sorted({bucket["minute"][14:16] for bucket in receiver.buckets()})
        assert minutes == ["14", "20", "21"]
        assert (receiver.requests(), receiver.dropped()) == (12, 20)
        assert receiver.requests() + receiver.dropped() == 8 * 4


class TestTheAppNeverNotices:
    def test_watchkeeper_away_costs_a_failed_flush_not_an_exception(self) -> None:
        agent = shipping_agent(nothing_listening())
        agent.record("/r", "GET", 200, 1.0)
        assert not agent.flush()
        assert agent.shipper is not None and agent.shipper.undelivered_requests == 1

    def test_a_watchkeeper_that_never_answers_times_out(self) -> None:
        with socket.socket() as silent:  # accepts connections (the backlog), answers nothing
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            agent = shipping_agent(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.2)
            agent.record("/r", "GET", 200, 1.0)
            started = time.monotonic()
            assert not agent.flush()
            assert time.monotonic() - started < 5.0

    def test_a_duration_that_is_no_duration_is_counted_as_refused(self) -> None:
        agent = Agent.configure(environ={})
        agent.record("/r", "GET", 200, float("nan"))
        agent.record("/r", "GET", 200, 1.0)
        assert agent.refused_requests == 1
        assert [b.count for b in agent.recorder.drain(final=True)] == [1]


class TestThreadAndClose:
    def test_the_thread_ships_every_interval_on_its_own(self, receiver: Receiver) -> None:
        agent = Agent.configure(
            environ={}, url=receiver.url, token=TOKEN, service="shop", interval_s=0.05
        )
        for _ in range(3):
            agent.record("/r", "GET", 200, 1.0)
        receiver.wait_for(lambda: receiver.requests() == 3)
        agent.record("/r", "GET", 200, 1.0)
        receiver.wait_for(lambda: receiver.requests() == 4)
        agent.close()

    def test_close_delivers_the_waiting_batch_and_the_rest(self, receiver: Receiver) -> None:
        agent = shipping_agent(receiver.url)
        receiver.statuses = [503]
        agent.record("/r", "GET", 200, 1.0)
        agent.record("/r", "GET", 200, 1.0)  # the agent's first request starts its thread
        assert not agent.flush()
        agent.record("/s", "GET", 200, 1.0)
        agent.close()
        assert receiver.requests() == 3
        agent.close()  # a second close (atexit after an explicit one) changes nothing
        assert len(receiver.attempts) == 3

    def test_close_with_watchkeeper_away_returns_and_says_what_is_lost(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        agent = shipping_agent(nothing_listening())
        agent.record("/r", "GET", 200, 1.0)
        with caplog.at_level(logging.WARNING, logger="watchkeeper_agent"):
            agent.close()
        assert "stopped with 1 requests in undelivered batches" in caplog.text


class TestConfiguration:
    def test_the_environment_configures_shipping(self, receiver: Receiver) -> None:
        environ = {
            "WATCHKEEPER_URL": receiver.url,
            "WATCHKEEPER_TOKEN": TOKEN,
            "WATCHKEEPER_SERVICE": "billing",
        }
        agent = Agent.configure(environ=environ, interval_s=3600.0)
        assert agent.shipper is not None
        assert agent.shipper.config.endpoint == receiver.url + INGEST_PATH
        agent.record("/r", "GET", 200, 1.0)
        assert agent.flush()
        assert [batch["service"] for batch in receiver.stored.values()] == ["billing"]

    def test_without_a_url_it_records_and_ships_nothing(self) -> None:
        agent = Agent.configure(environ={})
        agent.record("/r", "GET", 200, 1.0)
        assert agent.shipper is None and agent.flush()
        [bucket] = agent.recorder.drain(final=True)
        assert (bucket.service, bucket.count) == ("unknown_service", 1)

    def test_a_url_without_a_token_records_and_warns(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="watchkeeper_agent"):
            agent = Agent.configure(environ={"WATCHKEEPER_URL": "http://127.0.0.1:1"})
        assert agent.shipper is None
        assert "no token" in caplog.text

    @pytest.mark.parametrize(
        "options",
        [{"url": "ftp://example"}, {"service": ""}, {"service": "a\nb"}, {"interval_s": 0}],
    )
    def test_a_bad_argument_is_refused_at_start_up(self, options: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            Agent.configure(environ={}, token=TOKEN, **options)  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
class TestForkedWorkers:
    def test_each_worker_ships_its_own_requests_only(self, receiver: Receiver) -> None:
        agent = shipping_agent(receiver.url)
        agent.record("/r", "GET", 200, 1.0)  # in the master: starts its shipping thread
        child = os.fork()
        if child == 0:  # a worker forked after the master started shipping
            code = 1
            try:
                agent.record("/r", "GET", 200, 2.0)
                code = 0 if agent.flush() else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert agent.flush()
        batches = sorted(
            receiver.stored.values(), key=lambda batch: batch["agent"]["pid"] == os.getpid()
        )
        assert [(b["agent"]["pid"], b["buckets"][0]["sum_ms"]) for b in batches] == [
            (child, 2.0),
            (os.getpid(), 1.0),
        ]
