"""Public ids for plans and runs

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from backend.db.ids import new_id

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    for table, kind in (("plans", "plan"), ("runs", "run")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
        rows = op.get_bind().execute(sa.text(f"SELECT id FROM {table}")).scalars().all()
        for row_id in rows:
            op.execute(
                sa.text(f"UPDATE {table} SET public_id = :p WHERE id = :i").bindparams(
                    p=new_id(kind), i=row_id
                )
            )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("public_id", existing_type=sa.String(length=32), nullable=False)
            batch.create_unique_constraint(f"uq_{table}_public_id", ["public_id"])


def downgrade() -> None:
    for table in ("plans", "runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_public_id", type_="unique")
            batch.drop_column("public_id")
