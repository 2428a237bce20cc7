"""The first schema: cases, assignments, review states, comments and the event log.

Revision ID: 0001
Revises: none
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_when = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("added_at", _when, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("dataset", "case_id", name="uq_cases_dataset"),
    )
    op.create_table(
        "assignments",
        sa.Column("case_ref", sa.Integer, nullable=False),
        sa.Column("annotator", sa.Text, nullable=False),
        sa.Column("assigned_at", _when, nullable=False),
        sa.Column("assigned_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("case_ref", "annotator", name="pk_assignments"),
        sa.ForeignKeyConstraint(["case_ref"], ["cases.id"], name="fk_assignments_case_ref"),
    )
    op.create_table(
        "review_states",
        sa.Column("case_ref", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("changed_at", _when, nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("case_ref", name="pk_review_states"),
        sa.ForeignKeyConstraint(["case_ref"], ["cases.id"], name="fk_review_states_case_ref"),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("case_ref", sa.Integer, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("at", _when, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("position", sa.JSON, nullable=True),
        sa.Column("slice_index", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
        sa.ForeignKeyConstraint(["case_ref"], ["cases.id"], name="fk_comments_case_ref"),
    )
    op.create_index("ix_comments_case_ref", "comments", ["case_ref"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("case_ref", sa.Integer, nullable=False),
        sa.Column("who", sa.Text, nullable=False),
        sa.Column("at", _when, nullable=False),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(["case_ref"], ["cases.id"], name="fk_events_case_ref"),
    )


def downgrade() -> None:
    for table in ("events", "comments", "review_states", "assignments", "cases"):
        op.drop_table(table)
