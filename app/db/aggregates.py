"""Aggregates that hand a group's serialised sketches over in one value per group.

A grouped read of thousands of stored sketches returns, per group, the concatenation of
their headers and the concatenation of their records, so one row per group crosses to
Python and :func:`~app.vocabulary.histograms.decode_groups` merges every group at once (and
no per-sketch object is left for the garbage collector).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, case, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from watchkeeper_agent.sketch import HEADER


class _joined_bytes(FunctionElement[bytes]):
    """The concatenation of a group's blobs (NULLs left out)."""

    type = LargeBinary()
    inherit_cache = True


@compiles(_joined_bytes, "postgresql")
def _joined_bytes_postgresql(element: _joined_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ''::bytea)"


@compiles(_joined_bytes, "sqlite")
def _joined_bytes_sqlite(element: _joined_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    # group_concat copies a blob's bytes as they are; the cast keeps the result a blob.
    return f"CAST(group_concat({compiler.process(element.clauses, **kw)}, '') AS BLOB)"


def joined_sketches(
    sketch: Any, only: ColumnElement[bool] | None = None
) -> tuple[_joined_bytes, _joined_bytes]:
    """The headers and the records of a group's sketches (of its rows meeting ``only``),
    each run end to end; NULL for a group with none."""
    if only is not None:
        sketch = case((only, sketch))  # NULL otherwise, which both aggregates leave out
    return (
        _joined_bytes(func.substr(sketch, 1, HEADER.size)),
        _joined_bytes(func.substr(sketch, HEADER.size + 1)),
    )
