"""``watchkeeper serve --workers 2``, run as an operator runs it: both workers answer, each
stores its own request metrics (which add up to every request served), oversized heads are
refused, and the watched service is probed once per interval, not once per worker."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pickle
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from app.cli import ServeConfig
from app.core.config import Settings
from app.core.http_limits import HeaderLimitedProtocol
from app.db.models import RequestMinute
from app.db.store import Store
from tests.conftest import ADMIN_TOKEN, bearer
from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
ME = "/api/v1/users/me"
INTERVAL_S = 1
WATCHED_INTERVALS = 6  # how long the probes are counted, in intervals
DEADLINE_S = 90.0
MAX_HEADER_COUNT = 20


@dataclass
class WatchedService:
    """A local service the monitor probes; it notes when each probe came."""

    probes: list[float] = field(default_factory=list)
    port: int = 0

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.probes.append(time.time())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.fixture
async def watched() -> AsyncIterator[WatchedService]:
    service = WatchedService()
    server = await asyncio.start_server(service._answer, "127.0.0.1", 0)
    service.port = server.sockets[0].getsockname()[1]
    yield service
    server.close()
    await server.wait_closed()


@dataclass
class Served:
    """``watchkeeper serve --workers 2`` in a subprocess, on the test's store."""

    process: asyncio.subprocess.Process
    url: str

    def workers(self) -> set[int]:
        """The worker processes' ids (the parent's spawned children, not its helpers)."""
        children = psutil.Process(self.process.pid).children()
        return {child.pid for child in children if "spawn_main" in " ".join(child.cmdline())}

    async def stop(self) -> tuple[int | None, str]:
        """SIGTERM, as an orchestrator stops it; its exit code and what it logged."""
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = await asyncio.wait_for(self.process.communicate(), timeout=60)
        except TimeoutError:
            self.process.kill()
            _, err = await self.process.communicate()
        return self.process.returncode, err.decode()


@pytest.fixture
async def served(store_url: str, watched: WatchedService, tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    target = {"name": "shop", "kind": "http", "url": f"http://127.0.0.1:{watched.port}/"}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "WATCHKEEPER_DATA_DIR": str(tmp_path),
        "WATCHKEEPER_DATABASE_URL": store_url,
        "WATCHKEEPER_ADMIN_TOKEN": ADMIN_TOKEN,
        "WATCHKEEPER_MONITOR_INTERVAL_SECONDS": str(INTERVAL_S),
        "WATCHKEEPER_TARGETS": json.dumps([target]),
        "WATCHKEEPER_PERFORMANCE_FLUSH_SECONDS": "0.5",
        "WATCHKEEPER_MAX_HEADER_COUNT": str(MAX_HEADER_COUNT),
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, env=env, stdout=PIPE, stderr=PIPE
    )
    server = Served(process, f"http://127.0.0.1:{port}")
    try:
        await until_ready(server)
        yield server
    finally:
        if process.returncode is None:
            await server.stop()


async def until_ready(server: Served) -> None:
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise AssertionError(await server.process.communicate())
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("serve --workers 2 did not become ready in time")


async def served_me_per_process(store: Store) -> dict[str, int]:
    """How many ``GET /users/me`` each process has stored so far."""
    query = (
        select(RequestMinute.process, func.sum(RequestMinute.count))
        .where(RequestMinute.route == ME)
        .group_by(RequestMinute.process)
    )
    async with store.unit_of_work() as session:
        return {process: int(count) for process, count in (await session.execute(query)).all()}


async def load_until_both_workers_stored(server: Served, store: Store) -> int:
    """Sends ``GET /users/me`` on fresh connections (the kernel hands each to either
    worker) until the store holds rows of two processes; returns the requests sent."""
    sent = 0
    fresh = httpx.Limits(max_keepalive_connections=0)
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(base_url=server.url, limits=fresh, timeout=10) as http:
        while len(await served_me_per_process(store)) < 2:
            assert time.monotonic() < deadline, "the store never held both workers' rows"
            answers = await asyncio.gather(
                *(http.get(ME, headers=bearer(ADMIN_TOKEN)) for _ in range(16))
            )
            assert [answer.status_code for answer in answers] == [200] * 16
            assert {answer.json()["username"] for answer in answers} == {"admin"}
            sent += len(answers)
            await asyncio.sleep(0.5)
    return sent


async def test_two_workers_serve_store_their_own_rows_and_sweep_once_per_interval(
    served: Served, watched: WatchedService, store_url: str
) -> None:
    store = Store(store_url)
    try:
        sent = await load_until_both_workers_stored(served, store)
        workers = served.workers()
        too_many = {f"x-{n}": "1" for n in range(MAX_HEADER_COUNT + 5)}
        async with httpx.AsyncClient(
            base_url=served.url, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            refused = [(await http.get("/healthz", headers=too_many)).status_code for _ in range(8)]
        deadline = time.monotonic() + DEADLINE_S
        while not watched.probes or time.time() < watched.probes[0] + WATCHED_INTERVALS:
            assert time.monotonic() < deadline, "the monitor loop never probed"
            await asyncio.sleep(0.2)
        watched_until = time.time()

        code, err = await served.stop()

        stored = await served_me_per_process(store)
    finally:
        await store.dispose()
    assert code == 0, err
    assert len(workers) == 2
    assert {int(process.rsplit(":", 1)[1]) for process in stored} == workers
    assert sum(stored.values()) == sent  # each request counted once, by the worker that served it
    assert refused == [431] * 8
    # One sweep per interval probes once; a sweep per worker would probe about twice as often.
    # One more is allowed for a first sweep that a busy machine delayed past its interval.
    first = watched.probes[0]
    intervals = int(watched_until // INTERVAL_S) - int(first // INTERVAL_S) + 1
    probed = [at for at in watched.probes if at <= watched_until]
    assert 2 <= len(probed) <= intervals + 1, (intervals, probed)


def test_each_worker_gets_the_commands_settings_and_header_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEPER_CONFIG_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setattr(gc, "freeze", lambda: None)  # keep the test run's objects collectable
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'wk.db'}",
        port=8123,
        max_header_bytes=4096,
        max_header_count=MAX_HEADER_COUNT,
    )

    # What a spawned worker receives, and what it loads before serving.
    config = pickle.loads(pickle.dumps(ServeConfig(settings, workers=2)))
    config.load()

    protocol = config.http_protocol_class
    assert issubclass(protocol, HeaderLimitedProtocol)
    assert (protocol.max_header_bytes, protocol.max_header_count) == (4096, MAX_HEADER_COUNT)
    assert (config.port, config.workers) == (8123, 2)
    assert config.watchkeeper_settings == settings
