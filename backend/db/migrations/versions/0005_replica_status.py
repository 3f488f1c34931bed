"""Replication: each replica of a plan keeps its status (lag, last replicated, bytes, the last failure)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("plan_replicas", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replication", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plan_replicas", schema=None) as batch_op:
        batch_op.drop_column("replication")
