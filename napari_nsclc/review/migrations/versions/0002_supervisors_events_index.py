"""The supervisors list in the database, and an index for one case's events.

Revision 0001 had no supervisors table: the list had to be passed to every
process, and two processes could disagree on it. The index makes
``store.events(case)`` and the replay of one case cheap on a long log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervisors",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_supervisors"),
    )
    op.create_index("ix_events_case_ref", "events", ["case_ref", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_case_ref", table_name="events")
    op.drop_table("supervisors")
