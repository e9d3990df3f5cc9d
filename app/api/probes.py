"""Unauthenticated probes for orchestrators: alive (``/healthz``) and ready (``/readyz``).

Readiness answers within ``READY_DEADLINE_SECONDS`` whatever the store does: a store that
hangs is as unready as one that refuses, and an orchestrator must hear so in time.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import StoreDep
from app.db.store import StoreNotWritable, outage_cause

READY_DEADLINE_SECONDS = 2.0

router = APIRouter(tags=["probes"])
logger = logging.getLogger("watchkeeper.probes")
# Checks that outlived the probe's deadline: each ends on the store's own timeout, and is
# left to do so (cancelling a driver call mid-flight leaves its connection in doubt).
_overdue: set[asyncio.Task[None]] = set()


@router.get("/healthz")
async def alive() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def ready(store: StoreDep) -> JSONResponse | dict[str, str]:
    """The store answers and can take a write; 503 with the reason when it does not."""
    check = asyncio.ensure_future(store.check_writable())
    deadline = min(READY_DEADLINE_SECONDS, store.timeout or READY_DEADLINE_SECONDS)
    done, _ = await asyncio.wait({check}, timeout=deadline)
    if not done:
        _leave_to_finish(check)
        logger.warning("readiness check failed: no answer within %.1f s", deadline)
        return _unready("The store does not answer")
    try:
        check.result()
    except StoreNotWritable as error:
        logger.warning("readiness check failed: the store cannot take writes: %s", error)
        return _unready(f"The store cannot take writes: {error}")
    except Exception as error:  # any failure of the store means "not ready", never a 500
        logger.warning("readiness check failed: %s", outage_cause(error))
        return _unready("The store does not answer")
    return {"status": "ready", "store": store.dialect}


def _leave_to_finish(check: asyncio.Task[None]) -> None:
    _overdue.add(check)
    check.add_done_callback(_overdue.discard)
    # Its failure was reported already as "no answer"; read it so asyncio does not warn.
    check.add_done_callback(lambda task: task.cancelled() or task.exception())


def _unready(detail: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
