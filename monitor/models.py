"""The tables, as SQLAlchemy Core metadata. Identical on SQLite and PostgreSQL.

docs/schema.md documents every column for SQL users; change both together, with a migration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext

from monitor.platforms import label_platform


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on both databases.

    SQLite has no time zones and hands back naive values; we store UTC and re-attach it.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        # `process_bind_param` and SQLite's DATETIME formatting in one step: every timestamp
        # written goes through here (16,000 in a warm pass of 2,000 sources, issue 15), and
        # `isoformat` writes the same text, "2026-12-06 08:00:00.000000", a third as slowly.

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            # Cut before the "+00:00": every year has four digits, so the text has 26 characters.
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]

        return to_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _channel_of(context: DefaultExecutionContext) -> str:
    """A new source's channel, from its platform and address (`platforms.label_platform`)."""
    row = context.get_current_parameters()
    return label_platform(row["platform"], row.get("url"))


sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("platform", sa.Text, nullable=False),
    # The platform readers know it by: `platform`, except for a known platform's feed
    # (a YouTube channel's feed is "youtube"); what filters, exports and the digest show.
    sa.Column("channel", sa.Text, nullable=False, default=_channel_of),
    sa.Column("name", sa.Text),
    sa.Column("handle", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("fetch_url", sa.Text),  # where a permanent redirect sent us; NULL: use url
    sa.Column("platform_id", sa.Text),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("groups", JSONType, nullable=False, default=list),
    sa.Column("api_url", sa.Text),
    sa.Column("interval_s", sa.Integer),
    sa.Column("active", sa.Boolean, nullable=False, default=True),  # still in the config
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("cursor", JSONType, nullable=False, default=dict),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("status", sa.Text, nullable=False, default="new"),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", UTCDateTime),
    sa.Column("next_check_at", UTCDateTime, index=True),
    sa.Column("failing_since", UTCDateTime),  # start of the current run of failures
    sa.Column("rhythm_s", sa.Integer),  # the check interval its posting rhythm asks for
    sa.Column("leased_until", UTCDateTime),  # a worker holds the source until then
    sa.Column("leased_by", sa.Text),
    sa.Column("retired_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


def _version_columns() -> list[sa.Column[Any]]:
    """One version of a post: `posts` holds the current one, `post_revisions` the earlier ones."""
    return [
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("author", sa.Text),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("html", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("tags", JSONType, nullable=False, default=list),
        sa.Column("links", JSONType, nullable=False, default=list),
        sa.Column("mentions", JSONType, nullable=False, default=list),  # watched accounts only
        sa.Column("other_mentions", sa.Integer, nullable=False, default=0),
        sa.Column("media", JSONType, nullable=False, default=list),
        sa.Column("raw", JSONType),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("fetched_at", UTCDateTime, nullable=False),  # when this version was fetched
    ]


# The columns a revision copies from the post it supersedes.
REVISION_COLUMNS = tuple(column.name for column in _version_columns())

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("platform_post_id", sa.Text, nullable=False),
    *_version_columns(),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
    # The words and hashtags digest trends count the post under, space-separated, decided at
    # ingest (monitor.terms; migration 0010 filled in older posts); NULL once a post is erased.
    sa.Column("terms", sa.Text),
    # The two-word phrases of its headline and lead, as `terms` (monitor.terms.find_phrases;
    # migration 0014 filled in older posts); NULL once a post is erased.
    sa.Column("phrases", sa.Text),
    # Erased by decision (`omvarld erase`): content, revisions and counts are gone; the row
    # stays so that the next collection does not store the post again.
    sa.Column("erased_at", UTCDateTime),
    # The engagement at the latest count (ENGAGEMENT_NAMES of the newest post_metrics row),
    # kept by triggers on post_metrics (migration 0013); NULL while never counted.
    sa.Column("engagement", sa.BigInteger),
    sa.UniqueConstraint("source_id", "platform_post_id"),
    sa.Index("ix_posts_source_id_published_at", "source_id", "published_at"),
    sa.Index("ix_posts_published_at", "published_at"),
    # The posts that count (migration 0008): a digest's sums over 300,000 of them read this
    # index, not the wide rows.
    sa.Index(
        "ix_posts_live",
        "source_id",
        "published_at",
        sqlite_where=sa.text("deleted_at IS NULL AND erased_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL AND erased_at IS NULL"),
    ),
)

post_metrics = sa.Table(
    "post_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    sa.Column("views", sa.BigInteger),
    sa.Column("likes", sa.BigInteger),
    sa.Column("reposts", sa.BigInteger),
    sa.Column("replies", sa.BigInteger),
    sa.Column("quotes", sa.BigInteger),
    sa.Column("reactions", sa.BigInteger),
    sa.Column("bookmarks", sa.BigInteger),
    sa.Index("ix_post_metrics_post_id_id", "post_id", "id"),
)

post_revisions = sa.Table(
    "post_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("superseded_at", UTCDateTime, nullable=False),  # when the newer version was seen
    *_version_columns(),
    sa.Index("ix_post_revisions_post_id", "post_id"),
)

collection_runs = sa.Table(
    "collection_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("posts_new", sa.Integer, nullable=False, default=0),
    sa.Column("posts_updated", sa.Integer, nullable=False, default=0),
    sa.Column("posts_unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("metrics_written", sa.Integer, nullable=False, default=0),
    sa.Column("bytes_received", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Index("ix_collection_runs_source_id_started_at", "source_id", "started_at"),
    sa.Index("ix_collection_runs_started_at", "started_at"),
)

# Account-level counts over time (issue 13): a row only when a count changed, at most one a day
# per source unless it changed; NULL where the platform does not give that count.
source_metrics = sa.Table(
    "source_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    sa.Column("followers", sa.BigInteger),
    sa.Column("views", sa.BigInteger),  # total views of the account's content (YouTube)
    sa.Column("posts", sa.BigInteger),  # the account's post/video/status count
    sa.Index("ix_source_metrics_source_id_observed_at", "source_id", "observed_at"),
)

api_usage = sa.Table(
    "api_usage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # UTC
    sa.Column("units", sa.BigInteger, nullable=False, default=0),  # billed reads or quota units
    sa.UniqueConstraint("platform", "day"),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("recipient", sa.Text, nullable=False),  # the email address
    sa.Column("week", sa.Text, nullable=False),  # ISO week, "2026-W48"
    sa.Column("status", sa.Text, nullable=False),  # sending | sent | failed | skipped
    sa.Column("subject", sa.Text),
    sa.Column("message", sa.Text),  # the whole RFC 5322 message, archived before it is sent
    sa.Column("message_id", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),  # the latest attempt began
    sa.Column("sent_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("error", sa.Text),
    # The constraint that makes sending idempotent: one digest per recipient and week.
    sa.UniqueConstraint("recipient", "week"),
    sa.Index("ix_digests_week", "week"),
)

# Alerts (issue 14): one row per rule, event and channel. A keyword rule's event is a post
# ("post:42"), a spike rule's a window ("spike:2026-12-06T06:00+00:00"), a silence rule's a quiet
# spell of one source ("silence:feed:www.flen.se/rss:<its last post's time>"). The UNIQUE key is
# the claim: whoever inserts the row delivers it, so several workers never send one alert twice.
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rule", sa.Text, nullable=False),  # [[alerts]] name
    sa.Column("kind", sa.Text, nullable=False),  # keyword | spike | silence
    sa.Column("event_key", sa.Text, nullable=False),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="SET NULL")),
    sa.Column("channel", sa.Text, nullable=False),  # the Apprise URL redacted, or $ENV_NAME
    sa.Column("status", sa.Text, nullable=False),  # sending | sent | failed
    # The lines a spike's or a silence's event adds to a message; "" for a post's, written from
    # the post when it is sent (only the first [alerting] max_items of a message are written).
    sa.Column("item", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),  # the latest attempt began
    sa.Column("sent_at", UTCDateTime),
    sa.Column("next_attempt_at", UTCDateTime),  # a failed one is tried again from then
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("rule", "event_key", "channel"),
    sa.Index("ix_alert_events_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_alert_events_created_at", "created_at"),
    sa.Index("ix_alert_events_post_id", "post_id"),
)

# The passes whose alerts are not claimed yet (migration 0017): a pass adds its row before it
# stores a post, and its alert round's claims delete it in the same transaction. A row left by a
# process that died before its round says from when the next round must look at new posts, so
# a crash between storing posts and alerting on them loses no alert.
alert_passes = sa.Table(
    "alert_passes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("worker", sa.Text, nullable=False),  # host:pid:start, as leases name it
    sa.Column("started_at", UTCDateTime, nullable=False),
)

# Recipients who unsubscribed from the web; recipients themselves stay in the config.
digest_opt_outs = sa.Table(
    "digest_opt_outs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("recipient", sa.Text, nullable=False),  # the email address, as configured
    sa.Column("opted_out_at", UTCDateTime, nullable=False),
    sa.Column("via", sa.Text, nullable=False),  # one-click | recipient page | cli
    sa.UniqueConstraint("recipient"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("action", sa.Text, nullable=False),  # retention | erase | archive-export | …
    sa.Column("target", sa.Text, nullable=False),  # what it applied to: "post 42", "author @x"
    sa.Column("reason", sa.Text),  # why, as given by the person or the setting that decided it
    sa.Column("actor", sa.Text),  # who ran it (the OS user), or "omvarld run"
    sa.Column("counts", JSONType, nullable=False, default=dict),  # rows affected, per table
)

# Omvärld's own bookkeeping, one row per key (migration 0018). `sources_sync`: the fingerprint of
# the configured sources as the last sync wrote them, so an unchanged config is not synced again.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The full-text index (migration 0007) is kept by the database itself and not described by this
# metadata: on PostgreSQL the generated column posts.search and its GIN index, on SQLite the FTS5
# table posts_search and the shadow tables FTS5 keeps beside it. Leaving the column out also
# keeps `select(posts)` from fetching a tsvector with every row. Schema comparisons skip them.
SEARCH_TABLE = "posts_search"  # SQLite: rowid = posts.id; columns title and body hold stems
SEARCH_COLUMN = "search"  # PostgreSQL: posts.search, tsvector, title weight A, text weight B
SEARCH_INDEX = "ix_posts_search"

# SQLite (migration 0009): what search filters on, one short row per post, kept by triggers so
# that a common word's matches are filtered without reading the wide posts rows. Its own
# MetaData: it exists on SQLite only and is never created from metadata.
search_facets = sa.Table(
    "posts_search_facets",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),  # posts.id
    sa.Column("source_id", sa.Integer, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("erased_at", UTCDateTime),
    sa.Column("engagement", sa.BigInteger),  # posts.engagement (migration 0013)
)


def described_by_metadata(name: str | None, type_: str, parents: Mapping[Any, str | None]) -> bool:
    """False for the search index's parts; an Alembic `include_name` hook."""
    if type_ == "table":
        return name != SEARCH_TABLE and not (name or "").startswith(SEARCH_TABLE + "_")
    if type_ == "column":
        return not (parents.get("table_name") == "posts" and name == SEARCH_COLUMN)
    if type_ == "index":
        return name != SEARCH_INDEX
    return True
