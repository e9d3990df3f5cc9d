"""Probes for orchestrators, the request id, the access log and request limits."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import LogFormat
from app.core.logging import JsonFormatter, TextFormatter
from app.db.store import Store


@pytest.fixture
def access_lines() -> Iterator[list[logging.LogRecord]]:
    """Records of the access log as the app emits them."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("watchkeeper")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@contextlib.asynccontextmanager
async def writes_refused(app: FastAPI, store_url: str, backend: str) -> AsyncIterator[str]:
    """The store refuses writes until the block ends; yields the reason readiness gives.

    SQLite: another connection holds the write lock. PostgreSQL: the database turns
    read-only, as a standby is, and the app's pool reconnects as after a failover.
    """
    holder = Store(store_url)
    pool = app.state.store.engine
    database = make_url(store_url).database
    try:
        async with holder.engine.connect() as connection:
            if backend == "sqlite":
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield "database is locked"
                return
            turn = f'ALTER DATABASE "{database}" SET default_transaction_read_only = '
            await connection.execute(text(turn + "on"))
            await connection.commit()
            await pool.dispose()
            try:
                yield "the store is read-only"
            finally:
                await connection.execute(text(turn + "off"))
                await connection.commit()
                await pool.dispose()
    finally:
        await holder.dispose()


class TestProbes:
    async def test_alive_and_ready_without_auth(self, client: httpx.AsyncClient, backend) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["store"] == backend

    async def test_not_ready_when_the_store_is_gone(self, client: httpx.AsyncClient, app: FastAPI):
        app.state.store = Store("postgresql+asyncpg://watchkeeper:pw@127.0.0.1:9/none")

        ready = await client.get("/readyz")

        assert ready.status_code == 503
        assert ready.json()["detail"] == "The store does not answer"

    async def test_not_ready_while_the_store_cannot_take_writes(
        self, client: httpx.AsyncClient, app: FastAPI, store_url: str, backend: str
    ) -> None:
        async with writes_refused(app, store_url, backend) as reason:
            refused = await client.get("/readyz")
        ready = await client.get("/readyz")

        assert refused.status_code == 503
        assert refused.json()["detail"] == f"The store cannot take writes: {reason}"
        assert ready.status_code == 200

    async def test_api_answers_503_when_the_store_is_gone(
        self, client: httpx.AsyncClient, app: FastAPI, admin_headers
    ) -> None:
        app.state.store = Store("postgresql+asyncpg://watchkeeper:pw@127.0.0.1:9/none")

        response = await client.get("/api/v1/users/me", headers=admin_headers)

        assert response.status_code == 503
        assert "store" in response.json()["detail"]


class TestRequestIds:
    async def test_given_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "deploy-42"})

        assert response.headers["x-request-id"] == "deploy-42"

    async def test_missing_or_unsafe_request_id_is_replaced(
        self, client: httpx.AsyncClient
    ) -> None:
        fresh = await client.get("/healthz")
        unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})

        assert len(fresh.headers["x-request-id"]) == 32
        assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


class TestAccessLog:
    async def test_one_line_per_request_with_the_route_template(
        self, client: httpx.AsyncClient, admin_headers, access_lines
    ) -> None:
        await client.get("/api/v1/users/admin/tokens", headers=admin_headers)

        [line] = [r for r in access_lines if r.name == "watchkeeper.access"]
        assert line.getMessage().startswith("GET /api/v1/users/{username}/tokens 200 ")
        assert line.request_id

    async def test_json_format_carries_the_fields(
        self, client: httpx.AsyncClient, access_lines
    ) -> None:
        await client.get("/no/such/page", headers={"X-Request-ID": "r-1"})

        [record] = [r for r in access_lines if r.name == "watchkeeper.access"]
        entry = json.loads(JsonFormatter().format(record))
        assert entry["route"] == "<unmatched>"
        assert entry["status"] == 404
        assert entry["request_id"] == "r-1"
        assert entry["method"] == "GET"
        assert "r-1" in TextFormatter().format(record)
        assert LogFormat("json") is LogFormat.JSON


class TestBodyLimit:
    async def test_oversize_body_is_refused_before_parsing(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        huge = b'{"username": "' + b"a" * (1024 * 1024 + 1) + b'"}'

        response = await client.post(
            "/api/v1/users",
            content=huge,
            headers={**admin_headers, "Content-Type": "application/json"},
        )

        assert response.status_code == 413

    async def test_oversize_streamed_body_is_refused(
        self, client: httpx.AsyncClient, admin_headers
    ) -> None:
        async def chunks():
            for _ in range(40):
                yield b"x" * 32768

        response = await client.post(
            "/api/v1/users",
            content=chunks(),
            headers={**admin_headers, "Content-Type": "application/json"},
        )

        assert response.status_code == 413
