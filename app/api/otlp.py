"""The OTLP/HTTP receiver's routes: ``POST /v1/traces`` and ``POST /v1/metrics``.

At the root, where an unmodified OpenTelemetry SDK exporter posts given only
``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <token>``
(an ingest token, or a developer's or admin's). Their contract is the OTLP specification,
not our OpenAPI document, so they are left out of it; every error they answer is a
``google.rpc.Status`` encoded like the request (:class:`OtlpRoute`), the store going away
included, with ``Retry-After`` where the exporter should come back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app.api.deps import IngestCaller
from app.core.errors import WatchkeeperError
from app.db.store import is_outage
from app.services.performance import OtlpAnswer, OtlpReceiver, otlp_failure_answer

TRACES: Final = "/v1/traces"
METRICS: Final = "/v1/metrics"
PREFIX: Final = "/v1/"  # given its own body limit: exports are larger than API requests
# An outage is usually over within the flusher's few seconds of retrying.
_OUTAGE_RETRY_AFTER: Final = "5"


class OtlpRoute(APIRoute):
    """A route whose errors are answered as OTLP says, not as the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handle(request)
            except WatchkeeperError as error:
                return _failure(request, error.status_code, str(error.detail), error.headers)
            except HTTPException as error:  # the body limit, met while reading the body
                return _failure(request, error.status_code, str(error.detail), error.headers)
            except Exception as error:
                if not is_outage(error):
                    raise
                headers = {"Retry-After": _OUTAGE_RETRY_AFTER}
                return _failure(request, 503, "The store is unavailable; retry shortly", headers)

        return answer


def _failure(
    request: Request, status_code: int, message: str, headers: Mapping[str, str] | None
) -> Response:
    body = otlp_failure_answer(status_code, message, request.headers.get("content-type"))
    return Response(body.body, status_code, headers=headers, media_type=body.media_type)


async def get_receiver(request: Request) -> OtlpReceiver:
    receiver: OtlpReceiver = request.app.state.otlp_receiver
    return receiver


ReceiverDep = Annotated[OtlpReceiver, Depends(get_receiver)]
router = APIRouter(route_class=OtlpRoute, include_in_schema=False, tags=["otlp"])


def _response(answer: OtlpAnswer) -> Response:
    return Response(answer.body, media_type=answer.media_type)


@router.post(TRACES)
async def export_traces(request: Request, _: IngestCaller, receiver: ReceiverDep) -> Response:
    """An OTLP trace export: each SERVER span counted as one request of its service."""
    headers = request.headers
    return _response(
        await receiver.traces(
            await request.body(), headers.get("content-type"), headers.get("content-encoding")
        )
    )


@router.post(METRICS)
async def export_metrics(request: Request, _: IngestCaller, receiver: ReceiverDep) -> Response:
    """An OTLP metric export: HTTP server duration histograms counted once per request."""
    headers = request.headers
    return _response(
        await receiver.metrics(
            await request.body(), headers.get("content-type"), headers.get("content-encoding")
        )
    )
