"""posts.terms filled in for the posts stored before 0005, so the digest only reads terms

Migration 0005 added the column empty for older posts, and the digest split their texts itself
every time it was built. Here each such post gets the terms ingest would have stored, once. An
erased post keeps NULL: it has no text, and no digest counts it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from monitor.db import fill_column
from monitor.terms import stored_terms

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns as this migration knows them, not as monitor.models may describe them later.
posts = sa.table(
    "posts",
    sa.column("id", sa.Integer),
    sa.column("title", sa.Text),
    sa.column("text", sa.Text),
    sa.column("tags", sa.JSON),
    sa.column("terms", sa.Text),
    sa.column("erased_at", sa.DateTime),
)


def upgrade() -> None:
    fill_column(
        op.get_bind(),
        posts,
        "terms",
        sa.and_(posts.c.terms.is_(None), posts.c.erased_at.is_(None)),
        [posts.c.title, posts.c.text, posts.c.tags],
        lambda title, text, tags: stored_terms(title, text, tags or ()),
    )


def downgrade() -> None:
    # Nothing to undo: the terms are what ingest stores for every post since 0005.
    pass
