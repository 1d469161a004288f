"""sources.channel, the platform a source is shown and filtered under; posts.phrases

A YouTube channel's, Flickr account's or Mastodon account's feed is collected as a `feed` but
read as YouTube, Flickr or Mastodon (issue 13). `monitor.platforms.label_platform` decides it
from the feed's address, else from its newest post's; stored here once, so that filters
(`--platform youtube`), exports and GROUP BYs read a column instead of recomputing it per row.

The digest's trends also count two-word phrases ("ny skola"), decided at ingest like
`posts.terms`; every stored post gets its phrases here, so that the four weeks before a digest
count them as the week does (else every phrase would look new for a month).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

from monitor.db import fill_column
from monitor.platforms import label_platform
from monitor.terms import stored_phrases

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns as this migration knows them, not as monitor.models may describe them later.
sources = sa.table(
    "sources",
    sa.column("id", sa.Integer),
    sa.column("platform", sa.Text),
    sa.column("url", sa.Text),
    sa.column("channel", sa.Text),
)
posts = sa.table(
    "posts",
    sa.column("id", sa.Integer),
    sa.column("source_id", sa.Integer),
    sa.column("url", sa.Text),
    sa.column("published_at", sa.DateTime),
    sa.column("title", sa.Text),
    sa.column("text", sa.Text),
    sa.column("phrases", sa.Text),
    sa.column("erased_at", sa.DateTime),
)


def _views_of_0006() -> ModuleType:
    """Migration 0006, whose views for SQL users gain `channel` here (its text, one column
    added, rather than a second copy of it)."""
    spec = importlib.util.spec_from_file_location(
        "records_0006", Path(__file__).with_name("0006_records.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _create_views(with_channel: bool) -> None:
    views = _views_of_0006()
    posts_latest, daily_activity = views.POSTS_LATEST, views.DAILY_ACTIVITY
    if with_channel:
        posts_latest = posts_latest.replace("s.platform,", "s.platform, s.channel,", 1)
        daily_activity = daily_activity.replace("platform,", "platform, channel,")
    op.execute(posts_latest)
    op.execute(daily_activity.format(day=views.utc_day()))


def _drop_views() -> None:
    op.execute("DROP VIEW daily_activity")
    op.execute("DROP VIEW posts_latest")


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("channel", sa.Text(), nullable=False, server_default="feed"))
    connection = op.get_bind()
    # A feed's newest post's address: one index seek per source along (source_id, published_at).
    newest = (
        sa.select(posts.c.url)
        .where(posts.c.source_id == sources.c.id, posts.c.url.is_not(None))
        .order_by(posts.c.published_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = connection.execute(sa.select(sources.c.id, sources.c.platform, sources.c.url, newest))
    labels = [
        {"source_id": source_id, "label": label_platform(platform, url, post_url)}
        for source_id, platform, url, post_url in rows
    ]
    if labels:
        connection.execute(
            sa.update(sources)
            .where(sources.c.id == sa.bindparam("source_id"))
            .values(channel=sa.bindparam("label")),
            labels,
        )
    _drop_views()
    _create_views(with_channel=True)
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("phrases", sa.Text(), nullable=True))
    # Each stored post's phrases, as ingest now stores them; an erased post keeps NULL.
    fill_column(
        connection,
        posts,
        "phrases",
        posts.c.erased_at.is_(None),
        [posts.c.title, posts.c.text],
        stored_phrases,
    )


def downgrade() -> None:
    # The views first: they name the columns. Plain DROP COLUMN (SQLite 3.35 and later), not a
    # batch copy of the tables, which would lose the search triggers on posts (0007, 0009).
    _drop_views()
    op.drop_column("posts", "phrases")
    op.drop_column("sources", "channel")
    _create_views(with_channel=False)
