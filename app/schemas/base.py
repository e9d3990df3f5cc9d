"""Base classes and shared field types of the API contract.

Requests refuse unknown fields and any text a store cannot hold faithfully (NUL, lone
surrogates); instants must name their offset and fit the calendar once in UTC; every id in
a path or body fits the store's integer. Reads map ORM rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Primary keys are 32-bit on PostgreSQL; nothing larger can name a row.
ID_MAX = 2**31 - 1


def problem_in_text(text: str) -> str | None:
    """Why ``text`` cannot be stored as given, or None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def _check_text(value: Any) -> Any:
    """Refuses storable-looking text that is not, anywhere inside ``value``."""
    if isinstance(value, str):
        problem = problem_in_text(value)
        if problem is not None:
            raise ValueError(problem)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of dates once converted to UTC") from None


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A point in time with its offset (``2026-12-01T06:00:00Z``), held in UTC."""

RowId = Annotated[int, Field(ge=1, le=ID_MAX)]
"""The id of a stored row, in a path or a body."""

Offset = Annotated[int, Field(ge=0, le=ID_MAX, description="Rows to skip.")]


class RequestSchema(BaseModel):
    """A request body: unknown fields are a 422 naming the field, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _check_text(value)


class ResponseSchema(BaseModel):
    """A response body, built from ORM objects or plain data."""

    model_config = ConfigDict(from_attributes=True)
