"""Alerts after a collection pass: find what the rules fire on, claim it, deliver, record.

`omvarld collect` and `omvarld run` call `run_alerts` once a pass has stored its posts. Only
posts first seen in that pass and published within `[alerting] max_age` can fire a keyword or
spike rule, so a new source's backfill floods no one; silence rules look at the sources the pass
collected. Failed deliveries of earlier passes are tried again here too. A delivery failure
never raises: it is recorded, logged and retried, and the collection's outcome stands.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.alerts.deliver import Channel, Delivery, deliver_all, rule_channels
from monitor.alerts.message import AlertWriter
from monitor.alerts.rules import (
    BASELINE_WEEKS,
    REGULAR_SPAN,
    NewPost,
    PostStems,
    Rule,
    SourceActivity,
    check_spike,
    compile_rule,
    find_quiet_sources,
    match_posts,
    next_attempt_at,
    seen_quiet,
    spike_period,
)
from monitor.alerts.store import (
    Claimed,
    NewEvent,
    claim_new,
    claim_retries,
    mark_failed,
    mark_sent,
)
from monitor.config import Config
from monitor.db import chunks, first_line
from monitor.filters import PostFilter, where_sources
from monitor.models import posts, sources
from monitor.search import STORED_STEMS

if TYPE_CHECKING:
    from monitor.collect import SourceOutcome

log = logging.getLogger(__name__)

KEY_BATCH = 500  # source keys per IN (…): under SQLite's bound-parameter limit


@dataclass(frozen=True)
class AlertReport:
    """What one round of alerts did: messages per outcome, and each failure in one line."""

    sent: int = 0
    failed: int = 0
    failures: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        return f"Alerts: {self.sent} sent, {self.failed} failed"


def run_alerts(
    config: Config,
    engine: Engine,
    *,
    since: datetime,
    collected: Sequence[str] = (),
    with_new: Sequence[str] = (),
    now: datetime | None = None,
) -> AlertReport:
    """Alert on the pass that began at `since`: `collected` are the keys of the sources it
    collected, `with_new` those of them that stored new posts. Retries failed deliveries."""
    if not config.alerts:
        return AlertReport()
    now = now or datetime.now(UTC)
    rules = [compile_rule(rule) for rule in config.alerts]
    writers, channels = _Writers(config), _Channels()
    events = find_events(config, engine, rules, since, collected, with_new, now, writers, channels)
    claimed = claim_new(engine, events, now)
    claimed += claim_retries(engine, [r.name for r in rules], now, config.alerting.max_attempts)
    if not claimed:
        return AlertReport()
    return _deliver(config, engine, rules, claimed, now, writers, channels)


def alert_after_pass(
    config: Config, engine: Engine, since: datetime, outcomes: Sequence[SourceOutcome]
) -> AlertReport | None:
    """`run_alerts` for a pass that began at `since` and ended with `outcomes`; None when no
    rule is configured. Never raises: a broken alert round is logged and reported, and the
    collection it follows stands as it ended."""
    if not config.alerts:
        return None
    try:
        return run_alerts(
            config,
            engine,
            since=since,
            collected=[o.key for o in outcomes],
            with_new=[o.key for o in outcomes if o.counts.new],
        )
    except Exception as error:
        log.warning("alerts failed: %s", first_line(error), exc_info=True)
        return AlertReport(failures=(f"alerts could not run: {first_line(error)}",))


def find_events(
    config: Config,
    engine: Engine,
    rules: Sequence[Rule],
    since: datetime,
    collected: Sequence[str],
    with_new: Sequence[str],
    now: datetime,
    writers: _Writers,
    channels: _Channels,
) -> list[NewEvent]:
    """Every (rule, event, channel) this pass gives reason to alert on."""
    found: list[tuple[Rule, str, int | None, str]] = []
    on_posts = [r for r in rules if r.kind in ("keyword", "spike")]
    if on_posts and with_new:
        oldest = now - timedelta(seconds=config.alerting.max_age)
        new_posts = load_new_posts(engine, with_new, since, oldest)
        matched = match_posts(on_posts, new_posts)
        for rule in on_posts:
            if rule.name not in matched:
                continue
            if rule.kind == "keyword":
                for post in matched[rule.name]:
                    item = writers.post_item(rule, post)
                    found.append((rule, f"post:{post.id}", post.id, item))
                continue
            check = check_spike(
                load_selection_times(engine, rule, now),
                now,
                rule.config.hours,
                rule.config.factor,
                rule.config.min_posts,
            )
            if check.fired:
                period = spike_period(now, rule.config.hours).isoformat()
                item = writers.of(rule).spike_item(check, rule.config.query, BASELINE_WEEKS)
                found.append((rule, f"spike:{period}", None, item))
    for rule in (r for r in rules if r.kind == "silence"):
        if not collected:
            break
        activity = load_activity(engine, rule, collected)
        for source in find_quiet_sources(activity, rule.config.days, rule.config.min_posts):
            assert source.last_post_at is not None
            key = f"silence:{source.key}:{source.last_post_at.isoformat()}"
            item = writers.of(rule).silence_item(source, rule.config.days)
            found.append((rule, key, None, item))
    return [
        NewEvent(rule.name, rule.kind, key, post_id, channel.label, item)
        for rule, key, post_id, item in found
        for channel in channels.of(rule)
    ]


class _Channels:
    """Each rule's channels, read once a round and only for rules with something to send:
    labelling a URL loads Apprise, and a round that finds nothing need not."""

    def __init__(self) -> None:
        self.by_rule: dict[str, list[Channel]] = {}

    def of(self, rule: Rule) -> list[Channel]:
        if rule.name not in self.by_rule:
            self.by_rule[rule.name] = rule_channels(rule.config)
        return self.by_rule[rule.name]


class _Writers:
    """One AlertWriter per language, and each post's item written once per language however
    many rules match it (a busy pass: 600 posts, 2,700 matches of 50 rules)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.writers: dict[str, AlertWriter] = {}
        self.items: dict[tuple[str, int], str] = {}

    def of(self, rule: Rule) -> AlertWriter:
        language = rule.config.language or self.config.digest.language
        if language not in self.writers:
            self.writers[language] = AlertWriter(
                language, self.config.digest.timezone, self.config.web.public_url
            )
        return self.writers[language]

    def post_item(self, rule: Rule, post: NewPost) -> str:
        writer = self.of(rule)
        key = (writer.fmt.language, post.id)
        if key not in self.items:
            self.items[key] = writer.post_item(post)
        return self.items[key]


def load_new_posts(
    engine: Engine, source_keys: Sequence[str], since: datetime, oldest: datetime
) -> list[NewPost]:
    """The posts of these sources first seen at or after `since` and published at or after
    `oldest`, neither deleted nor erased."""
    found: list[NewPost] = []
    # SQLite's index keeps each post's stems (migration 0007): read, they need not be made
    # again (half the cost of matching a busy pass). PostgreSQL's tsvector is not the same.
    stored = engine.dialect.name == "sqlite"
    joined = posts.join(sources, sources.c.id == posts.c.source_id)
    stem_columns: list[sa.ColumnElement[str]] = []
    if stored:
        joined = joined.outerjoin(STORED_STEMS, STORED_STEMS.c.id == posts.c.id)
        stem_columns = [STORED_STEMS.c.c0, STORED_STEMS.c.c1]
    with engine.connect() as connection:
        for keys in chunks(sorted(source_keys), KEY_BATCH):
            query = (
                sa.select(
                    posts.c.id,
                    sources.c.key,
                    sources.c.platform,
                    sources.c.organisation,
                    sources.c.groups,
                    sources.c.channel,
                    posts.c.published_at,
                    posts.c.title,
                    posts.c.text,
                    posts.c.url,
                    *stem_columns,
                )
                .select_from(joined)
                .where(
                    sources.c.key.in_(keys),
                    posts.c.published_at >= oldest,
                    posts.c.first_seen_at >= since,
                    posts.c.deleted_at.is_(None),
                    posts.c.erased_at.is_(None),
                )
            )
            for row in connection.execute(query):
                found.append(
                    NewPost(
                        id=row.id,
                        source_key=row.key,
                        source_platform=row.platform,
                        channel=row.channel,
                        organisation=row.organisation,
                        groups=tuple(row.groups or ()),
                        published_at=row.published_at,
                        title=row.title,
                        text=row.text,
                        url=row.url,
                        stems=PostStems.stored(row.c0, row.c1) if stored else None,
                    )
                )
    return found


def _selection_filter(rule: Rule) -> PostFilter:
    config = rule.config
    return PostFilter(
        platforms=config.platforms,
        sources=config.sources,
        organisations=config.organisations,
        groups=config.groups,
    )


def load_selection_times(engine: Engine, rule: Rule, now: datetime) -> list[datetime]:
    """When the rule's selection posted in the windows a spike check compares: the last
    `hours`, and the same hours of each of the BASELINE_WEEKS weeks before."""
    span = timedelta(hours=rule.config.hours)
    windows = [
        sa.and_(
            posts.c.published_at > now - timedelta(weeks=k) - span,
            posts.c.published_at <= now - timedelta(weeks=k),
        )
        for k in range(BASELINE_WEEKS + 1)
    ]
    columns = [posts.c.published_at]
    if rule.matcher is not None:
        columns += [posts.c.title, posts.c.text]
    query = (
        sa.select(*columns)
        .select_from(posts.join(sources, sources.c.id == posts.c.source_id))
        .where(
            sa.or_(*windows),
            posts.c.deleted_at.is_(None),
            posts.c.erased_at.is_(None),
            *where_sources(_selection_filter(rule)),
        )
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if rule.matcher is None:
        return [row.published_at for row in rows]
    matcher = rule.matcher
    return [row.published_at for row in rows if matcher.matches(PostStems.of(row.title, row.text))]


def load_activity(engine: Engine, rule: Rule, collected: Sequence[str]) -> list[SourceActivity]:
    """For the rule's active, enabled sources among `collected`: the last post, the posts in
    the REGULAR_SPAN before it, and the latest successful collection."""
    activity = []
    with engine.connect() as connection:
        for keys in chunks(sorted(collected), KEY_BATCH):
            last_post = (
                sa.select(sa.func.max(posts.c.published_at))
                .where(posts.c.source_id == sources.c.id, posts.c.erased_at.is_(None))
                .scalar_subquery()
            )
            watched = connection.execute(
                sa.select(
                    sources.c.id,
                    sources.c.key,
                    sources.c.organisation,
                    sources.c.channel,
                    sources.c.last_success_at,
                    last_post.label("last_post_at"),
                ).where(
                    sources.c.key.in_(keys),
                    sources.c.active.is_(True),
                    sources.c.enabled.is_(True),
                    *where_sources(_selection_filter(rule)),
                )
            ).all()
            for row in watched:
                before = 0
                # Counted only where a quiet spell was seen: for the others it decides nothing.
                if seen_quiet(row.last_post_at, row.last_success_at, rule.config.days):
                    before = connection.execute(
                        sa.select(sa.func.count()).where(
                            posts.c.source_id == row.id,
                            posts.c.erased_at.is_(None),
                            posts.c.published_at > row.last_post_at - REGULAR_SPAN,
                            posts.c.published_at <= row.last_post_at,
                        )
                    ).scalar_one()
                activity.append(
                    SourceActivity(
                        key=row.key,
                        organisation=row.organisation,
                        platform=row.channel,
                        last_post_at=row.last_post_at,
                        posts_before=before,
                        last_success_at=row.last_success_at,
                    )
                )
    return activity


def _deliver(
    config: Config,
    engine: Engine,
    rules: Sequence[Rule],
    claimed: Sequence[Claimed],
    now: datetime,
    writers: _Writers,
    channels: _Channels,
) -> AlertReport:
    """One message per rule and channel, listing its claimed events; then each outcome."""
    by_name = {rule.name: rule for rule in rules}
    groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
    for claim in claimed:
        groups[(claim.rule, claim.channel)].append(claim)
    deliveries: list[Delivery] = []
    batches: list[list[Claimed]] = []
    gone: set[int] = set()  # deliveries to channels no longer configured: not retried
    for (name, label), batch in groups.items():
        rule = by_name[name]
        channel = next((c for c in channels.of(rule) if c.label == label), None)
        if channel is None:
            gone.add(len(deliveries))
            channel = Channel(label, None, "the rule no longer sends to this channel")
        batch.sort(key=lambda c: c.id)
        message = writers.of(rule).message(
            name, rule.kind, [c.item for c in batch], config.alerting.max_items
        )
        deliveries.append(Delivery(channel, message.title, message.body))
        batches.append(batch)
    outcomes = deliver_all(deliveries, config.alerting.timeout)
    delivered_at = datetime.now(UTC)
    sent_ids: list[int] = []
    failed = 0
    failures = []
    for index, (delivery, batch, error) in enumerate(
        zip(deliveries, batches, outcomes, strict=True)
    ):
        rule_name, label = batch[0].rule, delivery.channel.label
        if error is None:
            sent_ids += [c.id for c in batch]
            log.info("alert rule=%r channel=%s events=%d status=sent", rule_name, label, len(batch))
            continue
        failed += 1
        failures.append(f"{rule_name} → {label}: {error}")
        log.warning(
            "alert rule=%r channel=%s events=%d status=failed error=%r",
            rule_name, label, len(batch), error,
        )  # fmt: skip
        by_attempts: dict[int, list[int]] = defaultdict(list)
        for claim in batch:
            by_attempts[claim.attempts].append(claim.id)
        for attempts, ids in by_attempts.items():
            retry = (
                next_attempt_at(attempts, now, config.alerting.retry_after)
                if attempts < config.alerting.max_attempts and index not in gone
                else None
            )
            mark_failed(engine, ids, error, retry)
    if sent_ids:
        mark_sent(engine, sent_ids, delivered_at)  # one transaction for every message that went
    return AlertReport(len(deliveries) - failed, failed, tuple(failures))
