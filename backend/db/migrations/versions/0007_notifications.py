"""Notifications: channels, rules and the delivery outbox

Revision ID: 0007
Revises: 0006
"""

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    pass  # reserved: the slice that needs these tables fills this in


def downgrade() -> None:
    pass
