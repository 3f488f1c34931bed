"""Immutable storages: reserved for the immutability slice (nothing to add unless it needs a column)

Revision ID: 0011
Revises: 0010
"""

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    pass  # reserved: the immutability slice fills this in if it needs database state


def downgrade() -> None:
    pass
