"""kinds of check and alert rules as plain names: no CHECK constraint lists them

A kind of check and an alert rule are names of registries in the code; listing them in
the database made each new one a migration. The columns already are VARCHAR(32) on both
stores, so only the constraints go. A downgrade puts them back, and so fails while a row
holds a name the old lists lack (a ``tcp`` check, say).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 01:10:00.000000
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ("system", "database", "mongodb", "redis", "http")
_RULES = (
    "component_down",
    "flapping",
    "slow_dependency",
    "resource",
    "own_network",
    "endpoint_latency",
    "error_rate",
    "error_budget_burn",
)
# (table, column, the name 0003/0004 gave the enum, the values its constraint allowed)
_CHECKED = (
    ("health_results", "kind", "componentkind", _KINDS),
    ("health_component_states", "kind", "componentkind", _KINDS),
    ("health_hours", "kind", "componentkind", _KINDS),
    ("health_incidents", "kind", "componentkind", _KINDS),
    ("alerts", "rule", "alertrule", _RULES),
)


# Rows that point at a table with ON DELETE CASCADE (none point at the health tables).
_CASCADING_CHILDREN = {"alerts": ("alert_deliveries",)}


@contextmanager
def _rebuilt(table: str) -> Iterator[BatchOperations]:
    """Batch operations on ``table``; on SQLite, which copies the table to apply them, the
    rows of its children survive the copy."""
    # SQLite drops the old table, and with foreign keys on (the store turns them on, and
    # a transaction cannot turn them off) that deletes every child row through its cascade.
    sqlite = op.get_context().dialect.name == "sqlite"
    children = _CASCADING_CHILDREN.get(table, ()) if sqlite else ()
    for child in children:
        op.execute(f"CREATE TEMPORARY TABLE _kept_{child} AS SELECT * FROM {child}")
    with op.batch_alter_table(table, schema=None) as batch_op:
        yield batch_op
    for child in children:
        op.execute(f"INSERT INTO {child} SELECT * FROM _kept_{child}")
        op.execute(f"DROP TABLE _kept_{child}")


def upgrade() -> None:
    for table, _, enum_name, _ in _CHECKED:
        with _rebuilt(table) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_{enum_name}"), type_="check")


def downgrade() -> None:
    for table, column, enum_name, values in _CHECKED:
        with _rebuilt(table) as batch_op:
            batch_op.create_check_constraint(
                op.f(f"ck_{table}_{enum_name}"), sa.column(column).in_(values)
            )
