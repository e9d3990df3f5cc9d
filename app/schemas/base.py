"""Base classes of the API contract: requests refuse unknown fields, reads map ORM rows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestSchema(BaseModel):
    """A request body: unknown fields are a 422 naming the field, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseSchema(BaseModel):
    """A response body, built from ORM objects or plain data."""

    model_config = ConfigDict(from_attributes=True)
