"""a service dimension in request metrics, token kinds as plain names, cumulative ingest state

Every request row names its ``service`` and ``source``; the rows already stored are
Watchkeeper's own requests, so they get the service ``watchkeeper`` and the source
``self``. A token's kind loses its CHECK constraint, as check kinds did in 0006, so a new
kind (``ingest``) needs no migration; a downgrade puts it back, and so fails while a token
of a kind the old list lacks exists; it also deletes the rows other services' figures
made, which the old tables could not tell from Watchkeeper's own. ``ingest_streams`` keeps
the last point of each cumulative OTLP metric stream.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REQUEST_TABLES = ("request_minutes", "request_hours")
# (column, its type, what the rows stored before this migration were)
_DIMENSIONS = (
    ("service", sa.String(length=128), "watchkeeper"),
    ("source", sa.String(length=16), "self"),
)
_TOKEN_KINDS = ("session", "api")


def upgrade() -> None:
    for table in _REQUEST_TABLES:
        # The server default fills the existing rows; it goes again once they have it, since
        # every writer names its service and source.
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, type_, existing in _DIMENSIONS:
                batch_op.add_column(
                    sa.Column(column, type_, nullable=False, server_default=existing)
                )
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, type_, _ in _DIMENSIONS:
                batch_op.alter_column(column, existing_type=type_, server_default=None)

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_tokens_tokenkind"), type_="check")

    op.create_table(
        "ingest_streams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_key", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("start_time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum_ms", sa.Double(), nullable=False),
        sa.Column("buckets", sa.JSON(), nullable=False),
        sa.Column("updated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_streams")),
        sa.UniqueConstraint("stream_key", name=op.f("uq_ingest_streams_stream_key")),
    )


def downgrade() -> None:
    op.drop_table("ingest_streams")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_api_tokens_tokenkind"), sa.column("kind").in_(_TOKEN_KINDS)
        )

    for table in _REQUEST_TABLES:
        # Without the columns, another service's rows would pass for Watchkeeper's own.
        op.execute(sa.text(f"DELETE FROM {table} WHERE source <> 'self'"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, _, _ in reversed(_DIMENSIONS):
                batch_op.drop_column(column)
