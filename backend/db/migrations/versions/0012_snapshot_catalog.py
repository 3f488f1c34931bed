"""Snapshot catalog: snapshots, their issues, and the searchable text of each issue version

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "catalog_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id"), nullable=True),
        sa.Column("repository", sa.String(length=64), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issues", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.UniqueConstraint("repository", "snapshot_id"),
    )
    op.create_index("ix_catalog_snapshots_organisation_id", "catalog_snapshots", ["organisation_id"])
    op.create_index("ix_catalog_snapshots_plan_id", "catalog_snapshots", ["plan_id"])
    op.create_index("ix_catalog_snapshots_project", "catalog_snapshots", ["project"])
    op.create_index("ix_catalog_snapshots_time", "catalog_snapshots", ["time"])
    op.create_table(
        "catalog_issues",
        sa.Column(
            "snapshot",
            sa.Integer(),
            sa.ForeignKey("catalog_snapshots.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("issue_id", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("updated", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
    )
    op.create_index("ix_catalog_issues_key", "catalog_issues", ["key"])
    op.create_index("ix_catalog_issues_version", "catalog_issues", ["version"])
    op.create_table(
        "catalog_texts",
        sa.Column("version", sa.String(length=64), primary_key=True),
        sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
    )
    op.create_index("ix_catalog_texts_organisation_id", "catalog_texts", ["organisation_id"])
    if op.get_bind().dialect.name == "postgresql":
        # Filled by backend/catalog/store.py from the text folded in Python (case and diacritics), as the
        # query is: PostgreSQL's 'simple' configuration keeps accents, and unaccent is not immutable.
        op.execute("ALTER TABLE catalog_texts ADD COLUMN tsv tsvector")
        op.execute("CREATE INDEX ix_catalog_texts_tsv ON catalog_texts USING gin (tsv)")
    else:  # SQLite: an FTS5 index kept beside the rows (backend/catalog/store.py writes both)
        op.execute(
            "CREATE VIRTUAL TABLE catalog_fts USING fts5(version UNINDEXED, summary, description, comments, "
            "tokenize='unicode61 remove_diacritics 2')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS catalog_fts")
    op.drop_table("catalog_texts")
    op.drop_table("catalog_issues")
    op.drop_table("catalog_snapshots")
