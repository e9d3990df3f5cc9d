"""A watchkeeper-agent posts its batches to ``POST /api/v1/ingest/requests``: each batch is
stored once however often it is retried, and a forged one is refused whole."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from watchkeeper_agent.recorder import RequestRecorder
from watchkeeper_agent.shipper import encode_batch
from watchkeeper_agent.vocabulary import RequestSource

from app.db.models import IngestBatch, RequestMinute
from app.vocabulary.sketch import RELATIVE_ACCURACY
from tests.api.otlp_exporters import endpoints_of, ingest_token

BATCHES = "/api/v1/ingest/requests"


@pytest.fixture
async def agent(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    return await ingest_token(client, admin_headers, "shop-agent")


def batch_of(durations: list[float], *, route: str = "/orders/{id}", at: float | None = None):
    """A batch as the agent builds it, of GET requests of ``route`` ending at ``at``."""
    recorder = RequestRecorder(service="shop", source=RequestSource.AGENT)
    ended = time.time() if at is None else at
    for index, duration in enumerate(durations):
        recorder.record(
            route, "GET", 500 if index % 10 == 0 else 200, duration, f"r-{index}", ended
        )
    document: dict[str, Any] = json.loads(
        encode_batch(uuid.uuid4().hex, "shop", recorder.drain_partial(), 0)
    )
    return document


async def stored(app: FastAPI) -> tuple[int, int]:
    """Batch ids and requests of shop stored so far."""
    async with app.state.store.unit_of_work() as session:
        batches = await session.scalar(select(func.count()).select_from(IngestBatch))
        requests = await session.scalar(
            select(func.coalesce(func.sum(RequestMinute.count), 0)).where(
                RequestMinute.service == "shop"
            )
        )
    return batches or 0, requests or 0


class TestStoringBatches:
    async def test_a_batch_counts_every_request_with_its_quantiles(
        self, app: FastAPI, client, admin_headers, agent
    ) -> None:
        durations = np.random.default_rng(3).lognormal(np.log(30.0), 0.7, 400).tolist()

        response = await client.post(BATCHES, json=batch_of(durations), headers=agent)

        assert response.status_code == 200, response.text
        assert response.json()["stored"] is True
        assert response.json()["requests"] == 400
        orders = (await endpoints_of(app, client, admin_headers, "shop"))["GET", "/orders/{id}"]
        assert orders["requests"] == 400
        assert orders["error_rate"] == pytest.approx(0.1)
        for quantile, field in ((0.5, "median_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            exact = float(np.quantile(durations, quantile, method="lower"))
            assert abs(orders[field] - exact) <= exact * RELATIVE_ACCURACY + 0.001

    async def test_a_retried_batch_is_stored_once(self, app: FastAPI, client, agent) -> None:
        batch = batch_of([12.0, 15.0, 30.0])

        answers = [await client.post(BATCHES, json=batch, headers=agent) for _ in range(3)]

        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.json()["stored"] for a in answers] == [True, False, False]
        assert await stored(app) == (1, 3)

    async def test_shares_of_one_minute_in_two_batches_add_up(
        self, app: FastAPI, client, agent
    ) -> None:
        at = time.time()
        for durations in ([5.0, 6.0], [7.0]):
            response = await client.post(BATCHES, json=batch_of(durations, at=at), headers=agent)
            assert response.status_code == 200, response.text

        assert await stored(app) == (2, 3)

    async def test_a_caller_without_the_ingest_scope_is_refused(
        self, app: FastAPI, client, make_account
    ) -> None:
        reporter = await make_account("reporter")

        anonymous = await client.post(BATCHES, json=batch_of([1.0]))
        user = await client.post(
            BATCHES, json=batch_of([1.0]), headers={"Authorization": f"Bearer {reporter.token}"}
        )

        assert (anonymous.status_code, user.status_code) == (401, 403)
        assert await stored(app) == (0, 0)


def _first_bucket(change: dict[str, Any]):
    def forge(batch: dict[str, Any]) -> None:
        batch["buckets"][0].update(change)

    return forge


def _many_routes(batch: dict[str, Any]) -> None:
    template = batch["buckets"][0]
    batch["buckets"] = [{**template, "route": f"/r/{n}"} for n in range(10_001)]


def _minute_from_now(minutes: int):
    def forge(batch: dict[str, Any]) -> None:
        moment = time.gmtime((int(time.time()) // 60 + minutes) * 60)
        batch["buckets"][0]["minute"] = time.strftime("%Y-%m-%dT%H:%M:00Z", moment)

    return forge


class TestForgedBatches:
    @pytest.mark.parametrize(
        ("forge", "named"),
        [
            (_first_bucket({"count": 3}), "add up to"),
            (_first_bucket({"count": -1}), "count"),
            (_first_bucket({"sum_ms": 1.0}), "sums to"),
            (_first_bucket({"max_ms": 99.0}), "max"),
            (_first_bucket({"sketch": "not*base64"}), "base64"),
            (_first_bucket({"sketch": "AAAA"}), "serialised sketch"),
            (_first_bucket({"status_class": "6xx"}), "status_class"),
            (_first_bucket({"minute": "2026-01-01T00:00:30Z"}), "minute's start"),
            (_minute_from_now(60), "future"),
            (_minute_from_now(-60 * 24 * 500), "retention"),
            (_many_routes, "routes"),
        ],
        ids=[
            "count",
            "negative",
            "sum",
            "max",
            "base64",
            "format",
            "status",
            "unaligned",
            "future",
            "expired",
            "routes",
        ],
    )
    async def test_is_refused_naming_the_problem_and_nothing_is_stored(
        self, app: FastAPI, client, agent, forge, named
    ) -> None:
        batch = batch_of([10.0, 20.0])
        forge(batch)

        response = await client.post(BATCHES, json=batch, headers=agent)

        assert response.status_code == 422, response.text
        assert named in json.dumps(response.json()["detail"])
        assert await stored(app) == (0, 0)
