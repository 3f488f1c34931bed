"""Restores from the UI keep their journal in the database, so any process or worker can resume them

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    for name, column in (("restore_steps", "state"), ("restore_info", None)):
        columns = [
            sa.Column(
                "job_id", sa.Integer(), sa.ForeignKey("restore_jobs.id", ondelete="CASCADE"), primary_key=True
            ),
            sa.Column("key", sa.String(length=255), primary_key=True),
        ]
        if column:
            columns += [
                sa.Column("state", sa.String(length=16), nullable=False),
                sa.Column("result", sa.JSON()),
            ]
        else:
            columns += [sa.Column("value", sa.JSON())]
        op.create_table(name, *columns)


def downgrade() -> None:
    op.drop_table("restore_info")
    op.drop_table("restore_steps")
