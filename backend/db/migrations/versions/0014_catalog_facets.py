"""Snapshot catalog: the fields the snapshot browser filters by (status, type, priority, assignee, labels)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    with op.batch_alter_table("catalog_texts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facets", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_texts", schema=None) as batch_op:
        batch_op.drop_column("facets")
