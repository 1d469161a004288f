"""api usage per platform and UTC day; links and mentions of posts and revisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_usage")),
        sa.UniqueConstraint("platform", "day", name=op.f("uq_api_usage_platform_day")),
    )

    for table in ("posts", "post_revisions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("links", JSON, nullable=False, server_default="[]"))
            batch.add_column(sa.Column("mentions", JSON, nullable=False, server_default="[]"))
            batch.add_column(
                sa.Column("other_mentions", sa.Integer(), nullable=False, server_default="0")
            )


def downgrade() -> None:
    for table in ("posts", "post_revisions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("other_mentions")
            batch.drop_column("mentions")
            batch.drop_column("links")
    op.drop_table("api_usage")
