"""ix_posts_live: the posts a digest or a listing counts (not deleted, not erased), by source
and date, as a partial index that answers "how many, which, when" without reading the rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL AND erased_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_posts_live",
        "posts",
        ["source_id", "published_at"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_posts_live", table_name="posts")
