"""Members and roles: invitations, who set a Jira token

Revision ID: 0006
Revises: 0005
"""

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    pass  # reserved: the slice that needs these tables fills this in


def downgrade() -> None:
    pass
