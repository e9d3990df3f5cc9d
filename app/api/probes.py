"""Unauthenticated probes for orchestrators: alive (``/healthz``) and ready (``/readyz``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import StoreDep

router = APIRouter(tags=["probes"])
logger = logging.getLogger("watchkeeper.probes")


@router.get("/healthz")
async def alive() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def ready(store: StoreDep) -> JSONResponse | dict[str, str]:
    """The store answers; 503 with the reason when it does not."""
    try:
        await store.ping()
    except Exception as error:  # any failure of the store means "not ready", never a 500
        logger.warning("readiness check failed: %s", type(error).__name__)
        return JSONResponse(
            {"status": "unavailable", "detail": "The store does not answer"}, status_code=503
        )
    return {"status": "ready", "store": store.dialect}
