"""Audit: the append-only log of changes

Revision ID: 0008
Revises: 0007
"""

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    pass  # reserved: the slice that needs these tables fills this in


def downgrade() -> None:
    pass
