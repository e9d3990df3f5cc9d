"""issue desk

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:13:28.253364
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

DURATION_COLUMNS = ("triage_seconds", "first_response_seconds", "resolution_seconds")

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "issue_type",
            sa.Enum(
                "bug",
                "feature_request",
                "support",
                "incident",
                name="issuetype",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum(
                "low",
                "medium",
                "high",
                "critical",
                name="priority",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "triaged",
                "assigned",
                "in_progress",
                "testing",
                "resolved",
                "verified",
                "closed",
                name="issuestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "resolution",
            sa.Enum(
                "fixed",
                "wont_fix",
                "duplicate",
                "cannot_reproduce",
                name="resolution",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("triaged_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("assigned_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sla_due_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("waiting_since", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_seconds", sa.Double(), nullable=False),
        sa.Column("triage_seconds", sa.Double(), nullable=True),
        sa.Column("first_response_seconds", sa.Double(), nullable=True),
        sa.Column("resolution_seconds", sa.Double(), nullable=True),
        sa.Column("resolved_within_target", sa.Boolean(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("verification_rejections", sa.Integer(), nullable=False),
        sa.Column("verification_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_issues_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["issues.id"], name=op.f("fk_issues_duplicate_of_id_issues")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["users.id"], name=op.f("fk_issues_reporter_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
    )
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.create_index(
            "ix_issues_assignee_id_status", ["assignee_id", "status"], unique=False
        )
        for column in DURATION_COLUMNS:
            batch_op.create_index(batch_op.f(f"ix_issues_{column}"), [column], unique=False)
        batch_op.create_index(
            "ix_issues_breakdown",
            ["status", "issue_type", "priority", "resolution"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_issues_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_issues_duplicate_of_id"), ["duplicate_of_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_issues_issue_type"), ["issue_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_issues_priority"), ["priority"], unique=False)
        batch_op.create_index(
            "ix_issues_reporter_id_created_at", ["reporter_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_issues_resolved_at"), ["resolved_at"], unique=False)
        batch_op.create_index("ix_issues_status_created_at", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_issues_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "issue_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_issue_comments_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_comments_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_comments")),
    )
    with op.batch_alter_table("issue_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_comments_issue_id"), ["issue_id"], unique=False)

    op.create_table(
        "issue_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_issue_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_events_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_events")),
    )
    with op.batch_alter_table("issue_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_events_issue_id"), ["issue_id"], unique=False)

    op.create_table(
        "issue_labels",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_labels_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", "name", name=op.f("pk_issue_labels")),
    )
    with op.batch_alter_table("issue_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_labels_name"), ["name"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("issue_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_labels_name"))

    op.drop_table("issue_labels")
    with op.batch_alter_table("issue_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_events_issue_id"))

    op.drop_table("issue_events")
    with op.batch_alter_table("issue_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_comments_issue_id"))

    op.drop_table("issue_comments")
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issues_updated_at"))
        batch_op.drop_index("ix_issues_status_created_at")
        batch_op.drop_index(batch_op.f("ix_issues_resolved_at"))
        batch_op.drop_index("ix_issues_reporter_id_created_at")
        batch_op.drop_index(batch_op.f("ix_issues_priority"))
        batch_op.drop_index(batch_op.f("ix_issues_issue_type"))
        batch_op.drop_index(batch_op.f("ix_issues_duplicate_of_id"))
        batch_op.drop_index(batch_op.f("ix_issues_created_at"))
        batch_op.drop_index("ix_issues_breakdown")
        for column in DURATION_COLUMNS:
            batch_op.drop_index(batch_op.f(f"ix_issues_{column}"))
        batch_op.drop_index("ix_issues_assignee_id_status")

    op.drop_table("issues")
