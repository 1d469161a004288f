"""source_metrics: account-level counts over time (followers, views, posts), per source

A row only when a count changed, at most one a day per source unless it changed; collectors
report what their platform gives (X public_metrics, YouTube channel statistics, Mastodon and
Bluesky profiles, Facebook page fans/followers, Flickr where it can).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("posts", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_metrics_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_metrics")),
    )
    op.create_index(
        "ix_source_metrics_source_id_observed_at",
        "source_metrics",
        ["source_id", "observed_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_source_metrics_source_id_observed_at", table_name="source_metrics")
    op.drop_table("source_metrics")
