"""The whole loop from a shell: ``monitor_system.py --interval 1`` watches a local service
that is stopped and started again. The webhook receiver gets exactly one alert and one
resolution, and the issue desk shows the incident issue with the outage's duration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.db.models import HealthSweep
from app.db.store import Store
from app.main import create_app
from tests.api.maintenance.receivers import LocalPeer
from tests.conftest import ADMIN_TOKEN, bearer
from tests.faults.deadlines import eventually

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "monitor_system.py"
START_DEADLINE = 60.0  # the script's start and migration, on a busy machine


async def sweeps_stored(database: str) -> int:
    """Sweeps the script has stored (none while it has not migrated the store yet)."""
    store = Store(database)
    try:
        async with store.sessions() as session:
            query = select(func.count()).where(HealthSweep.status.is_not(None))
            return int(await session.scalar(query.select_from(HealthSweep)) or 0)
    except OperationalError:  # no tables yet
        return 0
    finally:
        await store.dispose()


async def test_monitor_script_raises_one_alert_one_resolution_and_an_incident(
    tmp_path: Path, peer: LocalPeer
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'watchkeeper.db'}"
    quiet = {"kind": "system", "name": "system", "degraded_percent": 100, "unhealthy_percent": 100}
    shop = {"kind": "http", "name": "shop", "url": peer.url("/target"), "timeout_s": 0.5}
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")} | {
        "WATCHKEEPER_DATABASE_URL": database,
        "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "WATCHKEEPER_TARGETS": json.dumps([quiet, shop]),
        "WATCHKEEPER_ALERT_WEBHOOKS": json.dumps([peer.url("/hook")]),
        "WATCHKEEPER_ALERT_WEBHOOK_SECRET": "s3cret",
        "WATCHKEEPER_MONITOR_INTERVAL_SECONDS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--interval",
        "1",
        "--json",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def sweeping() -> bool:
            return await sweeps_stored(database) > 0

        await eventually(sweeping, "the script storing its first sweep", START_DEADLINE)
        peer.up = False  # three failing sweeps raise the alert
        await eventually(lambda: peer.events("shop") != [], "the alert")
        peer.up = True  # two healthy ones clear it
        await eventually(lambda: len(peer.events("shop")) > 1, "the resolution")
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, errors.decode()

    assert peer.events("shop") == [("firing", "shop"), ("resolved", "shop")]

    app = create_app(
        Settings(
            database_url=database,
            admin_token=ADMIN_TOKEN,
            monitor_in_process=False,
            alert_dispatch_in_process=False,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:
            listed = await http.get(
                "/api/v1/maintenance/issues",
                params={"issue_type": "incident"},
                headers=bearer(ADMIN_TOKEN),
            )
            [incident] = [i for i in listed.json()["items"] if "shop" in i["title"]]
            detail = (
                await http.get(
                    f"/api/v1/maintenance/issues/{incident['id']}", headers=bearer(ADMIN_TOKEN)
                )
            ).json()

    assert incident["priority"] == "critical"
    assert "recovered" in detail["labels"]
    [comment] = detail["comments"]
    assert comment["body"].startswith("Recovered: shop was down for ")
    assert " s (from " in comment["body"]
