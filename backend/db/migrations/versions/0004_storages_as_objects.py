"""Storages as objects: a storage record per organisation; a plan's primary storage and its replicas

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "storages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("location", sa.JSON(), nullable=False),
        sa.Column("credentials_sealed", sa.Text(), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("immutability", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    with op.batch_alter_table("storages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_storages_organisation_id"), ["organisation_id"], unique=False)
    op.create_table(
        "plan_replicas",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("storage_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"]),
        sa.ForeignKeyConstraint(["storage_id"], ["storages.id"]),
        sa.PrimaryKeyConstraint("plan_id", "storage_id"),
    )
    with op.batch_alter_table("plan_replicas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_replicas_storage_id"), ["storage_id"], unique=False)
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_plans_storage_id"), ["storage_id"], unique=False)
        batch_op.create_foreign_key("fk_plans_storage_id_storages", "storages", ["storage_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_constraint("fk_plans_storage_id_storages", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_plans_storage_id"))
        batch_op.drop_column("storage_id")
    with op.batch_alter_table("plan_replicas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_replicas_storage_id"))
    op.drop_table("plan_replicas")
    with op.batch_alter_table("storages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storages_organisation_id"))
    op.drop_table("storages")
