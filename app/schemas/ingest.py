"""The shape of a watchkeeper-agent batch (``POST /api/v1/ingest/requests``), and the answer.

Exactly the format ``agent/README.md`` documents: what a field's type and range can say is
checked here (a 422 naming the field); what needs the decoded sketch, the clock or the
store (a sketch that does not add up, a minute too old or in the future, too many routes)
is checked by the service, before anything is stored.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from app.schemas.base import Instant, RequestSchema, ResponseSchema
from app.vocabulary.performance import MAX_SERVICE_NAME, SERVICE_NAME_PATTERN, StatusClass
from app.vocabulary.sketch import MAX_INDEXABLE_MS

# The agent sends at most 1,000 buckets a batch by default; a batch this large is no agent's.
MAX_BATCH_BUCKETS: Final = 20_000
MAX_EXEMPLARS: Final = 100
MAX_ROUTE: Final = 300  # the stored column's width
# A request id is echoed into answers and logs: only a short, plain one.
REQUEST_ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,128}$"
METHOD_PATTERN: Final = r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT|OTHER)$"
# Counts add up exactly in float weights and fit every store's integer below this.
MAX_COUNT: Final = 2**53

Milliseconds = Annotated[float, Field(ge=0, le=MAX_INDEXABLE_MS, allow_inf_nan=False)]


class AgentInfo(RequestSchema):
    version: str = Field(min_length=1, max_length=64)
    pid: int = Field(ge=0)


class BatchExemplar(RequestSchema):
    duration_ms: Milliseconds
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)
    at: Instant


class BatchBucket(RequestSchema):
    """One minute of one route, method and status class, for this shipment."""

    minute: Instant = Field(description="The minute's start, UTC (`YYYY-MM-DDTHH:MM:00Z`).")
    route: str = Field(min_length=1, max_length=MAX_ROUTE)
    method: str = Field(pattern=METHOD_PATTERN)
    status_class: StatusClass
    count: int = Field(ge=1, le=MAX_COUNT, description="Requests; the sketch's count.")
    sum_ms: Milliseconds
    max_ms: Milliseconds
    sketch: str = Field(min_length=1, description="Base64 of the serialised sketch.")
    exemplars: list[BatchExemplar] = Field(default_factory=list, max_length=MAX_EXEMPLARS)


class AgentBatch(RequestSchema):
    """What one agent process recorded since its last shipment."""

    batch_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="The same on every retry.")
    service: str = Field(min_length=1, max_length=MAX_SERVICE_NAME, pattern=SERVICE_NAME_PATTERN)
    agent: AgentInfo
    dropped_requests: int = Field(ge=0, le=MAX_COUNT)
    buckets: list[BatchBucket] = Field(max_length=MAX_BATCH_BUCKETS)


class BatchReceipt(ResponseSchema):
    """What became of a batch."""

    batch_id: str
    stored: bool = Field(description="False when this batch id was stored before.")
    buckets: int
    requests: int
