"""A server killed under load (SIGKILL: nothing runs on the way out) loses at most the
requests of its last flush interval, on SQLite and on PostgreSQL.

``watchkeeper serve`` runs as an operator runs it, flushing every ``FLUSH_SECONDS``; a
client asks it at a steady pace for many intervals, counting the answers it gets, and the
server is killed right after the last one. Restarted on the same store, the server comes
up, and the store holds every request answered before the last interval (plus the time a
flush round may take on a busy machine), and none that was not answered.

The load fits in one minute of the clock: a server that stored only complete minutes would
then have stored none of it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from app.db.models import RequestMinute
from app.db.store import Store
from tests.conftest import ADMIN_TOKEN
from tests.faults.deadlines import ANSWER_DEADLINE
from tests.faults.served import ROOT, ServeProcess
from tests.serving import free_port

FLUSH_SECONDS = 0.5
LOAD_SECONDS = 5.0  # ten flush intervals
PACE_SECONDS = 0.025  # a request every 25 ms, one at a time
# The requests the kill may cost: those of the last interval, and of the round in flight,
# which a busy machine may stretch. A deadline for the flusher, not a speed claim.
MAY_LOSE_SECONDS = FLUSH_SECONDS + 1.5
ROUTE = "/healthz"
ONE_WORKER = ("--workers", "1")  # the command's own process, so the kill is of the server


def server_env(store_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "WATCHKEEPER_DATABASE_URL": store_url,
        "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "WATCHKEEPER_ADMIN_TOKEN": ADMIN_TOKEN,
        "WATCHKEEPER_PERFORMANCE_FLUSH_SECONDS": str(FLUSH_SECONDS),
        "WATCHKEEPER_MONITOR_IN_PROCESS": "false",  # only the client's requests
    }


def within_one_minute(seconds: float) -> None:
    """Returns at once if ``seconds`` more fit in the current minute of the clock, else
    at the start of the next one."""
    into_minute = time.time() % 60
    if into_minute + seconds > 60:
        time.sleep(60 - into_minute)


async def steady_load(url: str) -> list[float]:
    """Asks ``ROUTE`` every ``PACE_SECONDS`` for ``LOAD_SECONDS``; when each 200 arrived."""
    answered: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=ANSWER_DEADLINE) as client:
        ends = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < ends:
            response = await client.get(ROUTE)
            assert response.status_code == 200, response.text
            answered.append(time.monotonic())
            await asyncio.sleep(PACE_SECONDS)
    return answered


async def stored_requests(store_url: str) -> int:
    store = Store(store_url)
    try:
        async with store.sessions() as session:
            query = select(func.sum(RequestMinute.count)).where(RequestMinute.route == ROUTE)
            return int(await session.scalar(query) or 0)
    finally:
        await store.dispose()


async def test_a_killed_server_loses_at_most_its_last_flush_interval(
    store_url: str, tmp_path: Path
) -> None:
    env = server_env(store_url, tmp_path)
    log = tmp_path / "serve.log"
    server = ServeProcess(env, port=free_port(), cwd=tmp_path, output=log, args=ONE_WORKER)
    try:
        server.wait_ready()
        within_one_minute(LOAD_SECONDS + MAY_LOSE_SECONDS)
        answered = await steady_load(server.url)
        killed_at = time.monotonic()
        server.kill()
    finally:
        server.stop()
    restarted = ServeProcess(env, port=free_port(), cwd=tmp_path, output=log, args=ONE_WORKER)
    try:
        restarted.wait_ready()
    finally:
        restarted.stop()

    stored = await stored_requests(store_url)
    must_keep = sum(1 for at in answered if at < killed_at - MAY_LOSE_SECONDS)
    assert must_keep > 0  # the load outlasted what the kill may cost
    assert must_keep <= stored <= len(answered), (must_keep, stored, len(answered))
