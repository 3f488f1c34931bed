"""Members and roles: invitations, who set a Jira token

Memberships get a public id, where their role came from (manual | jira) and when they were made;
Jira accounts who set the token, when, and the last check; a table of invitations (token hashes only).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from backend.db.ids import new_id

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="manual")
        )
        batch_op.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column(
                "created",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
    memberships = sa.table("memberships", sa.column("id", sa.Integer), sa.column("public_id", sa.String))
    conn = op.get_bind()
    for (pk,) in conn.execute(sa.select(memberships.c.id)).all():
        conn.execute(memberships.update().where(memberships.c.id == pk).values(public_id=new_id("member")))
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.alter_column("public_id", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint("uq_memberships_public_id", ["public_id"])

    with op.batch_alter_table("jira_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_by", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("set_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_check_ok", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("last_check_message", sa.Text(), nullable=False, server_default=""))

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_user_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["accepted_user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_organisation_id"), ["organisation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_organisation_id"))
    op.drop_table("invitations")
    with op.batch_alter_table("jira_accounts", schema=None) as batch_op:
        batch_op.drop_column("last_check_message")
        batch_op.drop_column("last_check_ok")
        batch_op.drop_column("last_check_at")
        batch_op.drop_column("set_at")
        batch_op.drop_column("set_by")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_constraint("uq_memberships_public_id", type_="unique")
        batch_op.drop_column("created")
        batch_op.drop_column("public_id")
        batch_op.drop_column("source")
