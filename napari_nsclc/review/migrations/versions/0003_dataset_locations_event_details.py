"""Where each dataset's files are, and details on an event (what was submitted).

Revision 0002 knew a case only by name: a supervisor had to find the
dataset and its corrections folder by hand, and a report had no numbers on
what a student changed. ``datasets`` keeps the folders a student worked in;
``events.details`` keeps, on a submission, the measured agreement of the
correction with the original, so that a report needs only the store.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("corrections", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_datasets"),
    )
    op.add_column("events", sa.Column("details", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:  # SQLite before 3.35 cannot drop a column in place
        batch.drop_column("details")
    op.drop_table("datasets")
