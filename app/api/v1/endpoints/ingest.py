"""``POST /api/v1/ingest/requests``: a watchkeeper-agent's batch of per-minute buckets.

The format is the agent's (``agent/README.md``); an ingest token, a developer or an admin
may post. Any 2xx tells the agent the batch is stored (now, or before: a retried batch id
is stored once); 422 names what is forged and nothing of the batch is stored.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request

from app.api.deps import ClockDep, IngestCaller
from app.api.v1.prefix import API_V1
from app.schemas.ingest import AgentBatch, BatchReceipt
from app.services.performance import AgentIngest

PREFIX: Final = f"{API_V1}/ingest/"  # given its own body limit, as OTLP exports are


async def get_agent_ingest(request: Request) -> AgentIngest:
    ingest: AgentIngest = request.app.state.agent_ingest
    return ingest


AgentIngestDep = Annotated[AgentIngest, Depends(get_agent_ingest)]
router = APIRouter(prefix=f"{API_V1}/ingest", tags=["ingest"])


# The ingest caller is checked without the session login: its 401 and 403 declared by hand.
@router.post("/requests", response_model=BatchReceipt, responses={401: {}, 403: {}})
async def ingest_requests(
    batch: AgentBatch, _: IngestCaller, ingest: AgentIngestDep, clock: ClockDep
) -> BatchReceipt:
    """Store an agent's batch once, however often it is retried."""
    return await ingest.take(batch, now=clock())
