"""posts.engagement: each post's engagement at its latest count, kept by triggers

Search's `min_engagement`, the web app's home page and every list of posts showed each post's
latest engagement by looking up its newest post_metrics row: one index step a post, which at a
full week (19,000 posts) or a common word with a minimum (tens of thousands of matches) was most
of the page's time (0.6 s on PostgreSQL at a million posts). The sum is now kept on the post
itself, by triggers on post_metrics, so that every writer (ingest, erasure, retention, bulk loads
with COPY) keeps it without knowing of it. NULL: never counted. SQLite's narrow search facets
(migration 0009) carry it too, for the search's filters.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# monitor.types.ENGAGEMENT_NAMES as of this revision: a migration keeps its own copy, so that a
# later change of the names comes with a migration of its own.
ENGAGEMENT_NAMES = ("likes", "reposts", "replies", "quotes", "reactions")


def engagement_of(row: str) -> str:
    """The SQL sum of one post_metrics row's engagement counts, a missing count as 0."""
    return " + ".join(f"coalesce({row}.{name}, 0)" for name in ENGAGEMENT_NAMES)


LATEST = f"""(
    SELECT {engagement_of("m")} FROM post_metrics AS m
    WHERE m.post_id = posts.id ORDER BY m.id DESC LIMIT 1
)"""

SQLITE_TRIGGERS = [
    # A new count is the latest (ids only grow): the post takes its sum.
    f"""
    CREATE TRIGGER post_metrics_latest_insert AFTER INSERT ON post_metrics
    BEGIN
        UPDATE posts SET engagement = {engagement_of("new")} WHERE id = new.post_id;
    END
    """,
    # The latest count deleted (erasure, retention): the post takes the one before, or NULL.
    f"""
    CREATE TRIGGER post_metrics_latest_delete AFTER DELETE ON post_metrics
    WHEN NOT EXISTS (SELECT 1 FROM post_metrics WHERE post_id = old.post_id AND id > old.id)
    BEGIN
        UPDATE posts SET engagement = {LATEST} WHERE id = old.post_id;
    END
    """,
    # Counts corrected in place (not done by Omvärld itself, but by hand or a tool): the same.
    f"""
    CREATE TRIGGER post_metrics_latest_update AFTER UPDATE ON post_metrics
    WHEN NOT EXISTS (SELECT 1 FROM post_metrics WHERE post_id = new.post_id AND id > new.id)
    BEGIN
        UPDATE posts SET engagement = {engagement_of("new")} WHERE id = new.post_id;
    END
    """,
]

# Migration 0009's facet triggers, again with engagement.
SQLITE_FACETS = [
    "DROP TRIGGER posts_search_facets_insert",
    "DROP TRIGGER posts_search_facets_update",
    """
    CREATE TRIGGER posts_search_facets_insert AFTER INSERT ON posts
    BEGIN
        INSERT INTO posts_search_facets
            (id, source_id, published_at, kind, erased_at, engagement)
        VALUES
            (new.id, new.source_id, new.published_at, new.kind, new.erased_at, new.engagement);
    END
    """,
    """
    CREATE TRIGGER posts_search_facets_update
    AFTER UPDATE OF source_id, published_at, kind, erased_at, engagement ON posts
    BEGIN
        UPDATE posts_search_facets
        SET source_id = new.source_id, published_at = new.published_at, kind = new.kind,
            erased_at = new.erased_at, engagement = new.engagement
        WHERE id = new.id;
    END
    """,
]

POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION post_metrics_keep_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM post_metrics WHERE post_id = OLD.post_id AND id > OLD.id)
        THEN
            UPDATE posts SET engagement = {LATEST} WHERE id = OLD.post_id;
        END IF;
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM post_metrics WHERE post_id = NEW.post_id AND id > NEW.id) THEN
        UPDATE posts SET engagement = {engagement_of("NEW")} WHERE id = NEW.post_id;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("posts", sa.Column("engagement", sa.BigInteger(), nullable=True))
    op.execute(f"UPDATE posts SET engagement = {LATEST}")
    if dialect == "sqlite":
        op.add_column("posts_search_facets", sa.Column("engagement", sa.BigInteger()))
        op.execute(
            "UPDATE posts_search_facets SET engagement ="
            " (SELECT engagement FROM posts WHERE posts.id = posts_search_facets.id)"
        )
        for statement in [*SQLITE_TRIGGERS, *SQLITE_FACETS]:
            op.execute(statement)
    else:
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(
            "CREATE TRIGGER post_metrics_latest AFTER INSERT OR UPDATE OR DELETE ON post_metrics"
            " FOR EACH ROW EXECUTE FUNCTION post_metrics_keep_latest()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER post_metrics_latest_{name}")
        for name in ("insert", "update"):
            op.execute(f"DROP TRIGGER posts_search_facets_{name}")
        for statement in FACETS_0009:
            op.execute(statement)
        op.drop_column("posts_search_facets", "engagement")
    else:
        op.execute("DROP TRIGGER post_metrics_latest ON post_metrics")
        op.execute("DROP FUNCTION post_metrics_keep_latest()")
    op.drop_column("posts", "engagement")


# Migration 0009's facet triggers, as they were, for the downgrade.
FACETS_0009 = [
    """
    CREATE TRIGGER posts_search_facets_insert AFTER INSERT ON posts
    BEGIN
        INSERT INTO posts_search_facets (id, source_id, published_at, kind, erased_at)
        VALUES (new.id, new.source_id, new.published_at, new.kind, new.erased_at);
    END
    """,
    """
    CREATE TRIGGER posts_search_facets_update
    AFTER UPDATE OF source_id, published_at, kind, erased_at ON posts
    BEGIN
        UPDATE posts_search_facets
        SET source_id = new.source_id, published_at = new.published_at, kind = new.kind,
            erased_at = new.erased_at
        WHERE id = new.id;
    END
    """,
]
