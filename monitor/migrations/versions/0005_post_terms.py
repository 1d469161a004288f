"""posts.terms: the words and hashtags a post is counted under in digest trends, kept at ingest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for posts stored before this migration: the digest splits their text itself.
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("terms", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("terms")
