"""From an HTML form (or a filter's query string) to the request schema the API takes.

A browser sends every field of a form, empty ones included; an empty field means "not
given", so it is left out and the schema's default applies. A list field may come as
repeated fields or as one comma-separated field (labels typed into one box). A mistake is
the API's own 422, shown as a page by ``PageRoute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, get_origin

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from app.web.sessions import CSRF_FIELD

Schema = TypeVar("Schema", bound=BaseModel)


def validated(schema: type[Schema], data: Mapping[str, Any]) -> Schema:
    """``schema`` of ``data``; a mistake is a RequestValidationError naming the field."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            [{**problem, "loc": ("form", *problem["loc"])} for problem in error.errors()]
        ) from None


def split_list(value: str) -> list[str]:
    """``"a, b,,c"`` as ``["a", "b", "c"]``."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _is_list(schema: type[BaseModel], name: str) -> bool:
    return get_origin(schema.model_fields[name].annotation) is list


def from_fields(schema: type[Schema], fields: Iterable[tuple[str, Any]]) -> Schema:
    """``schema`` of a form's or query string's fields: blanks, the CSRF token and fields
    the schema does not know left out."""
    data: dict[str, Any] = {}
    for name, value in fields:
        if name == CSRF_FIELD or name not in schema.model_fields or not isinstance(value, str):
            continue
        if _is_list(schema, name):
            data.setdefault(name, []).extend(split_list(value))
        elif value.strip():
            data[name] = value
    return validated(schema, data)
