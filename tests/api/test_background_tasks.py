"""The server's background tasks under supervision: a bug in the request-metrics flusher is
logged with its traceback, counted in ``/metrics``, and the flusher runs again; shutdown
still stores every request served."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from sqlalchemy import select
from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

from app.core.config import Settings
from app.db.models import RequestMinute
from app.db.store import Store
from app.main import create_app
from app.services.supervisor import Backoff, Supervisor
from tests.faults.deadlines import eventually


async def stored_routes(store: Store) -> set[str]:
    async with store.unit_of_work() as session:
        return set(await session.scalars(select(RequestMinute.route)))


def fail_first_drain(recorder: RequestRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the recorder's next drain raise a bug, and the ones after it work."""
    drain = recorder.drain
    failed = False

    def drain_with_a_bug(*, final: bool = False) -> list[MinuteBucket]:
        nonlocal failed
        if not failed:
            failed = True
            raise RuntimeError("bucket index out of range")
        return drain(final=final)

    monkeypatch.setattr(recorder, "drain", drain_with_a_bug)


class TestFlusherCrash:
    async def test_a_bug_is_logged_counted_and_the_flusher_restarts_and_flushes_at_shutdown(
        self, settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app = create_app(settings.model_copy(update={"performance_flush_seconds": 0.01}))
        app.state.supervisor = Supervisor(backoff=Backoff(first=0.01))
        monkeypatch.setattr(logging.getLogger("watchkeeper"), "propagate", True)
        tracking = app.state.request_tracking
        fail_first_drain(tracking.recorder, monkeypatch)
        failures = 'watchkeeper_task_failures_total{task="request_flusher"} 1.0'

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:

                async def counted() -> bool:
                    return failures in (await http.get("/metrics")).text

                await eventually(counted, "the failure counted in /metrics")
                exposed = (await http.get("/metrics")).text
                # A request of a minute gone by: only a running flusher stores it now.
                tracking.recorder.record("/earlier", "GET", 200, 4.0, at=time.time() - 120)

                async def stored_again() -> bool:
                    return "/earlier" in await stored_routes(app.state.store)

                await eventually(stored_again, "the restarted flusher storing again")
                served = await http.get("/healthz")  # this minute: only the final flush takes it

        assert served.status_code == 200
        assert "# TYPE watchkeeper_task_failures_total counter" in exposed
        assert "task 'request_flusher' crashed; restarting in 0.01 s" in caplog.text
        assert "Traceback" in caplog.text
        assert "RuntimeError: bucket index out of range" in caplog.text
        store = Store(settings.database_url)
        try:
            assert {"/earlier", "/healthz", "/metrics"} <= await stored_routes(store)
        finally:
            await store.dispose()
