"""Workers: what a distributed executor needs to deliver each project task once

Revision ID: 0009
Revises: 0008
"""

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    pass  # reserved: the slice that needs these tables fills this in


def downgrade() -> None:
    pass
