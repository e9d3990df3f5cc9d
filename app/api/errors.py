"""The one error contract: every error body is ``{"detail": ...}``, and the OpenAPI
document declares, on each operation, every error status it can answer.

``detail`` is a sentence for errors the service raises, or a list of field problems for
requests that fail validation. The validation handler never echoes a secret field, nor an
input JSON cannot carry (infinite numbers, lone surrogates), nor a large one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

_SECRET_FIELDS = frozenset({"password", "token", "secret", "client_secret", "admin_token"})
_MAX_ECHO_CHARS = 200


class FieldProblem(BaseModel):
    """One reason a request failed validation."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then names.")
    msg: str
    type: str
    input: Any = Field(default=None, description="What was sent; left out for secret fields.")


class ErrorBody(BaseModel):
    """Every error the service answers."""

    detail: str | list[FieldProblem]


def _echoable(value: Any) -> bool:
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError):
        return False
    return len(encoded) <= _MAX_ECHO_CHARS


def field_problems(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors as safe-to-send ``FieldProblem`` dicts."""
    problems = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        problem: dict[str, Any] = {
            "loc": loc,
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        secret = any(str(part).lower() in _SECRET_FIELDS for part in loc)
        if not secret and _echoable(error.get("input")):
            problem["input"] = error.get("input")
        problems.append(problem)
    return problems


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    """422 listing what is wrong with the request, safely."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": field_problems(error.errors())}, status_code=422)


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _tree(sub)


_DESCRIPTIONS = {
    400: "The path, query string or form holds NUL characters or invalid UTF-8.",
    401: "The bearer token is missing, unknown, expired or revoked.",
    403: "The caller's role may not do this.",
    404: "Nothing with this id exists that the caller may see.",
    409: "The object's state does not allow this change now.",
    413: "The request body is larger than the limit.",
    422: "The request is invalid; `detail` says what and where.",
    429: "Too many attempts; wait `Retry-After` seconds.",
    503: "The store is unavailable; try again shortly.",
}


def error_statuses(
    route: APIRoute,
    *,
    authenticated: Callable[..., Any],
    store: Callable[..., Any],
) -> set[int]:
    """The error statuses ``route`` can answer, read from its path and dependencies."""
    tree = list(_tree(route.dependant))
    calls = {dependant.call for dependant in tree}
    has_path_params = any(dependant.path_params for dependant in tree)
    statuses = {400, 413}
    if has_path_params or route.body_field or any(d.query_params for d in tree):
        statuses.add(422)
    if has_path_params:
        statuses.add(404)
    if authenticated in calls:
        statuses |= {401, 403}
        if (route.methods or set()) - {"GET", "HEAD"}:
            statuses |= {404, 409, 422}
    if store in calls:
        statuses.add(503)
    return statuses


def declare_errors(
    app: FastAPI,
    routers: Iterable[APIRouter],
    *,
    authenticated: Callable[..., Any],
    store: Callable[..., Any],
) -> None:
    """Makes ``app.openapi()`` declare the error responses of every route of ``routers``.

    The routers carry their full prefix, so each route's path is the document's path.
    """
    declared: dict[tuple[str, str], set[int]] = {}
    for route in (route for router in routers for route in router.routes):
        if isinstance(route, APIRoute) and route.include_in_schema:
            statuses = error_statuses(route, authenticated=authenticated, store=store)
            statuses |= {int(code) for code in route.responses if int(code) >= 400}
            for method in route.methods or ():
                declared[(route.path_format, method.lower())] = statuses
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}))
        schemas["ErrorBody"] = body
        reference = {"$ref": "#/components/schemas/ErrorBody"}
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code in sorted(declared.get((path, method), ())):
                    entry = responses.setdefault(str(code), {})
                    entry.setdefault("description", _DESCRIPTIONS.get(code, "Error"))
                    entry["content"] = {"application/json": {"schema": reference}}
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
