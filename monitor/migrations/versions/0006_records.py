"""Records: erased posts as tombstones, the audit log, and the stable views for SQL users

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENGAGEMENT = (
    "coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0)"
    " + coalesce(m.quotes, 0) + coalesce(m.reactions, 0)"
)

# Each post with its latest counts (NULL where none were ever observed). Erased posts are
# left out: their content is gone and they count for nothing.
POSTS_LATEST = f"""
CREATE VIEW posts_latest AS
SELECT p.id, p.source_id, s.key AS source_key, s.platform, s.organisation,
       p.platform_post_id, p.kind, p.url, p.author, p.published_at, p.title, p.text,
       p.language, p.first_seen_at, p.deleted_at,
       m.observed_at AS counted_at, m.views, m.likes, m.reposts, m.replies, m.quotes,
       m.reactions, m.bookmarks,
       CASE WHEN m.id IS NULL THEN NULL ELSE {ENGAGEMENT} END AS engagement
FROM posts p
JOIN sources s ON s.id = p.source_id
LEFT JOIN post_metrics m
       ON m.id = (SELECT max(id) FROM post_metrics WHERE post_metrics.post_id = p.id)
WHERE p.erased_at IS NULL
"""

# Per source and UTC day: posts published, how many were later deleted, and their latest
# engagement added up.
DAILY_ACTIVITY = """
CREATE VIEW daily_activity AS
SELECT source_id, source_key, platform, organisation, {day} AS day,
       count(*) AS posts,
       sum(CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END) AS deleted,
       sum(coalesce(engagement, 0)) AS engagement,
       sum(coalesce(views, 0)) AS views
FROM posts_latest
GROUP BY source_id, source_key, platform, organisation, {day}
"""


def utc_day() -> str:
    """`daily_activity`'s day: a post's UTC date, in the dialect's SQL."""
    if op.get_bind().dialect.name == "postgresql":
        return "CAST((published_at AT TIME ZONE 'UTC') AS date)"
    return "date(published_at)"


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("counts", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )  # fmt: skip
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.execute(POSTS_LATEST)
    op.execute(DAILY_ACTIVITY.format(day=utc_day()))


def downgrade() -> None:
    op.execute("DROP VIEW daily_activity")
    op.execute("DROP VIEW posts_latest")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("erased_at")
