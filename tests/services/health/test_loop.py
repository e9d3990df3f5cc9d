"""The monitoring loop and the sweeps it collects: one writer per interval across processes,
a stop that finishes the sweep in flight, and sweeps kept in memory while the store is away.

The store really goes away: PostgreSQL is reached through a local TCP proxy the test shuts
(dropping every connection), and the SQLite file's directory is moved aside.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.models import HealthResult, HealthSweep
from app.db.store import Store
from app.services.health.checks.http import HttpTarget
from app.services.health.loop import run_loop
from app.services.health.system_monitor import SystemMonitor
from app.vocabulary.health import ComponentKind, ComponentStatus
from tests.faults.deadlines import eventually

INTERVAL = 1


class TcpProxy:
    """Forwards loopback connections to a server until shut; can be opened again."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        """Stops listening and cuts every open connection, as a store going down would."""
        assert self._server is not None
        self._server.close()
        for link in list(self._links):
            link.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for end in (writer, upstream_writer):
                if end is not None:
                    end.transport.abort()
            self._links.discard(task)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        sink.transport.abort()


@dataclass
class FlakyStore:
    """A store the monitor reaches at ``url``, which the test can take away and bring back."""

    url: str
    proxy: TcpProxy | None = None
    directory: Path | None = None

    async def go_away(self, store: Store) -> None:
        if self.proxy is not None:
            await self.proxy.shut()
        else:
            assert self.directory is not None
            await store.dispose()  # nothing held open any more
            self.directory.rename(self.directory.with_name("unmounted"))

    async def come_back(self) -> None:
        if self.proxy is not None:
            await self.proxy.open()
        else:
            assert self.directory is not None
            self.directory.with_name("unmounted").rename(self.directory)


def onto_volume(database: Path, directory: Path) -> Path:
    """Moves the SQLite file into a directory of its own, which can then go away."""
    directory.mkdir()
    database.rename(directory / "watchkeeper.db")
    return directory


@pytest.fixture
async def flaky(store_url: str, tmp_path: Path) -> AsyncIterator[FlakyStore]:
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        directory = onto_volume(Path(url.database), tmp_path / "volume")
        moved = url.set(database=str(directory / "watchkeeper.db"))
        yield FlakyStore(moved.render_as_string(hide_password=False), directory=directory)
        return
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.open()
    via_proxy = url.set(host="127.0.0.1", port=proxy.listen_port)
    yield FlakyStore(via_proxy.render_as_string(hide_password=False), proxy=proxy)
    if proxy.listen_port and proxy._server is not None:
        await proxy.shut()


@contextlib.asynccontextmanager
async def monitor_on(
    url: str, settings: Settings, **changes: object
) -> AsyncIterator[SystemMonitor]:
    """A SystemMonitor with its own Store on ``url``, as a separate process would have."""
    store = Store(url)
    monitor = SystemMonitor(store, settings.model_copy(update={"database_url": url, **changes}))
    try:
        yield monitor
    finally:
        await monitor.aclose()
        await store.dispose()


def without_host_check(monitor: SystemMonitor) -> None:
    """Only the store is checked: the host plays no part here."""
    monitor.targets = [t for t in monitor.targets if t.kind is not ComponentKind.SYSTEM]


@contextlib.asynccontextmanager
async def gated_api(monitor: SystemMonitor) -> AsyncIterator[asyncio.Event]:
    """Adds an API target that answers only once the test sets the event it yields: a
    sweep then stays in flight for exactly as long as the test needs."""
    gate = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await gate.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    without_host_check(monitor)
    monitor.targets.append(HttpTarget(kind=ComponentKind.HTTP, name="api", url=url))
    try:
        yield gate
    finally:
        gate.set()
        server.close()
        await server.wait_closed()


async def stored_sweeps(url: str) -> list[HealthSweep]:
    store = Store(url)
    try:
        async with store.sessions() as session:
            return list(await session.scalars(select(HealthSweep).order_by(HealthSweep.id)))
    finally:
        await store.dispose()


async def until_claimed(url: str, slot: int) -> None:
    """Waits for a monitor to claim ``slot`` in the store."""

    async def claimed() -> bool:
        return any(sweep.slot == slot for sweep in await stored_sweeps(url))

    await eventually(claimed, f"claiming slot {slot}")


async def result_count(url: str, **where: object) -> int:
    store = Store(url)
    try:
        async with store.sessions() as session:
            query = select(func.count()).select_from(HealthResult).filter_by(**where)
            return int(await session.scalar(query) or 0)
    finally:
        await store.dispose()


class TestStoreAway:
    async def test_sweeps_taken_while_the_store_is_away_are_written_once_it_is_back(
        self, flaky: FlakyStore, settings: Settings
    ) -> None:
        async with monitor_on(flaky.url, settings) as monitor:
            without_host_check(monitor)
            before = await monitor.collect(source="test")
            await flaky.go_away(monitor.store)
            away = [await monitor.collect(source="test") for _ in range(2)]
            pending_while_away = monitor.pending
            await flaky.come_back()
            back = await monitor.collect(source="test")

        assert before is not None and before.stored
        assert [(s.stored, s.sweep_id) for s in away if s is not None] == [(False, None)] * 2
        assert all(s is not None and s.status is ComponentStatus.UNHEALTHY for s in away)
        assert pending_while_away == 2
        assert back is not None and back.stored and monitor.pending == 0
        sweeps = await stored_sweeps(flaky.url)
        taken = [before.checked_at, *(s.checked_at for s in away if s is not None), back.checked_at]
        assert [s.started_at for s in sweeps] == taken  # each once, in order
        assert await result_count(flaky.url) == 4
        assert await result_count(flaky.url, status=ComponentStatus.UNHEALTHY) == 2

    async def test_a_sweep_cut_off_from_the_store_mid_sweep_still_lands_in_its_slot(
        self, flaky: FlakyStore, settings: Settings
    ) -> None:
        async with monitor_on(flaky.url, settings) as monitor, gated_api(monitor) as gate:
            collecting = asyncio.create_task(monitor.collect(source="loop", slot=7))
            await until_claimed(flaky.url, 7)
            await flaky.go_away(monitor.store)
            gate.set()
            cut_off = await collecting
            await flaky.come_back()
            back = await monitor.collect(source="loop", slot=8)

        assert cut_off is not None and not cut_off.stored
        assert back is not None and back.stored
        sweeps = await stored_sweeps(flaky.url)
        assert [(s.slot, s.started_at) for s in sweeps] == [
            (7, cut_off.checked_at),
            (8, back.checked_at),
        ]

    async def test_memory_stays_bounded_while_the_store_is_away(
        self, flaky: FlakyStore, settings: Settings
    ) -> None:
        async with monitor_on(flaky.url, settings, monitor_buffer_limit=2) as monitor:
            without_host_check(monitor)
            await flaky.go_away(monitor.store)
            away = [await monitor.collect(source="test") for _ in range(3)]
            kept, dropped = monitor.pending, monitor.dropped_sweeps
            await flaky.come_back()
            back = await monitor.collect(source="test")

        assert (kept, dropped) == (2, 1)
        assert back is not None and back.stored
        sweeps = await stored_sweeps(flaky.url)
        newest_kept = [s.checked_at for s in away[1:] if s is not None]
        assert [s.started_at for s in sweeps] == [*newest_kept, back.checked_at]


async def run_until_stored(sweeps: int, url: str, *monitors: SystemMonitor) -> None:
    """Runs a loop per monitor, as separate processes would, until ``sweeps`` sweeps are
    stored in full, then stops them all."""
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(run_loop(m, interval=INTERVAL, stop=stop, source=f"loop{i}"))
        for i, m in enumerate(monitors)
    ]

    async def stored() -> bool:
        return sum(s.status is not None for s in await stored_sweeps(url)) >= sweeps

    try:
        await eventually(stored, f"{sweeps} sweeps stored", seconds=sweeps * INTERVAL + 15)
    finally:
        stop.set()
        await asyncio.gather(*loops)


class TestLease:
    async def test_two_loops_on_one_store_write_one_sweep_per_interval(
        self, store_url: str, settings: Settings
    ) -> None:
        async with (
            monitor_on(store_url, settings) as first,
            monitor_on(store_url, settings) as second,
        ):
            without_host_check(first)
            without_host_check(second)
            await run_until_stored(3, store_url, first, second)

        sweeps = await stored_sweeps(store_url)
        slots = [s.slot for s in sweeps if s.slot is not None]
        assert len(slots) == len(sweeps) >= 3
        assert sorted(slots) == list(range(min(slots), max(slots) + 1))
        assert all(s.status is ComponentStatus.HEALTHY for s in sweeps)  # each fully written
        assert await result_count(store_url) == len(sweeps)  # one store result per sweep
        for sweep in sweeps[1:]:  # each in its own interval, from its boundary on
            assert sweep.slot is not None
            late = sweep.started_at.timestamp() - sweep.slot * INTERVAL
            assert 0 <= late < INTERVAL


class TestStop:
    async def test_stopping_finishes_the_sweep_in_flight(
        self, store_url: str, settings: Settings
    ) -> None:
        async with monitor_on(store_url, settings) as monitor, gated_api(monitor) as gate:
            stop = asyncio.Event()
            loop = asyncio.create_task(run_loop(monitor, interval=60, stop=stop, source="test"))
            await until_claimed(store_url, int(time.time() // 60))  # mid-sweep: the API waits
            stop.set()
            await asyncio.sleep(0)
            in_flight = not loop.done()
            gate.set()
            await asyncio.wait_for(loop, timeout=5)

        assert in_flight
        (sweep,) = await stored_sweeps(store_url)
        assert sweep.status is not None  # written, not just claimed
        assert await result_count(store_url) == 2  # the store and the API
