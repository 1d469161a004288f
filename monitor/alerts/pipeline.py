"""Alerts after a collection pass: find what the rules fire on, claim it, deliver, record.

The alert process (`monitor.alerts.alerter`) runs `run_alerts` once a pass has stored its posts.
Only posts first seen in that pass and published within `[alerting] max_age` can fire a keyword
or spike rule, so a new source's backfill floods no one; silence rules look at the sources the
pass collected. A pass that a crash kept from its round is taken over by a later one, and failed
deliveries of earlier passes are tried again. A delivery failure never raises: it is recorded,
logged and retried.

The round does the work for what is sent, not for what matched: every match is claimed, but a
post's lines are written only for the first `[alerting] max_items` events of each message.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.alerts.alerter import AlertReport
from monitor.alerts.deliver import Channel, Outgoing, rule_channels
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
    find_abandoned_passes,
    mark_failed,
    mark_sent,
    newest_post_id,
)
from monitor.config import Config
from monitor.db import chunks
from monitor.filters import PostFilter, where_sources
from monitor.models import posts, sources
from monitor.search import STORED_STEMS

if TYPE_CHECKING:
    from monitor.alerts.message import AlertWriter

log = logging.getLogger(__name__)

KEY_BATCH = 500  # source keys or post ids per IN (…): under SQLite's bound-parameter limit

# Writes and sends a round's messages; per message None when it went, else why not.
Send = Callable[[Sequence[Outgoing]], list[str | None]]


def run_alerts(
    config: Config,
    engine: Engine,
    send: Send,
    *,
    since: datetime,
    worker: str,
    pass_id: int | None = None,
    collected: Sequence[str] = (),
    with_new: Sequence[str] = (),
    now: datetime | None = None,
    reader: PassReader | None = None,
) -> AlertReport:
    """Alert on the pass that `worker` began at `since` (recorded as `pass_id`, when it was):
    `collected` are the keys of the sources it collected, `with_new` those of them that stored
    new posts. Takes over the passes that crashed before their rounds, and retries failed
    deliveries. `send`: see `monitor.alerts.deliver.Sender`; `reader`: the pass's posts read
    and matched while it ran, when they were."""
    if not config.alerts:
        return AlertReport()
    now = now or datetime.now(UTC)
    rules = [compile_rule(rule) for rule in config.alerts]
    abandoned = find_abandoned_passes(engine, worker, now, timedelta(seconds=config.collect.lease))
    earlier = [p.started_at for p in abandoned if p.id != pass_id]
    finished = sorted({p.id for p in abandoned} | ({pass_id} if pass_id is not None else set()))
    if earlier:
        log.info("alerts: taking over %d unfinished passes", len(earlier))
    channels = _Channels()
    if reader is not None and (reader.since != since or earlier):
        reader = None  # another pass's, or all sources' posts are wanted
    found = find_events(
        config,
        engine,
        rules,
        since,
        collected,
        with_new,
        now,
        channels,
        min(earlier, default=None),
        reader,
    )
    claimed = claim_new(engine, found.events, now, finished)
    claimed += claim_retries(engine, [r.name for r in rules], now, config.alerting.max_attempts)
    if not claimed:
        return AlertReport()
    return _deliver(config, engine, send, rules, claimed, now, channels, found.posts)


def warm_up(config: Config, engine: Engine) -> None:
    """Do once what a round does the first time, before the pass needs the round: compile the
    rules (the stemmer) and the queries that read new posts and unfinished passes, on nothing."""
    for rule in config.alerts:
        compile_rule(rule)
    later = datetime.now(UTC) + timedelta(days=1)
    load_new_posts(engine, ["-"], later, later)
    load_new_posts(engine, None, later, later)
    reader = PassReader(config, engine, later, after_id=newest_post_id(engine))
    reader.read(datetime.now(UTC))
    reader.finish(["-"], later)
    find_abandoned_passes(engine, "-", later, timedelta(0))
    for rule in config.alerts:
        rule_channels(rule)  # labels the URLs through Apprise, once


@dataclass(frozen=True)
class FoundEvents:
    """What a round found to alert on, and the new posts it read, by id."""

    events: list[NewEvent]
    posts: dict[int, NewPost]


def find_events(
    config: Config,
    engine: Engine,
    rules: Sequence[Rule],
    since: datetime,
    collected: Sequence[str],
    with_new: Sequence[str],
    now: datetime,
    channels: _Channels,
    recover_since: datetime | None = None,
    reader: PassReader | None = None,
) -> FoundEvents:
    """Every (rule, event, channel) this pass gives reason to alert on. With `recover_since`,
    the posts of every source first seen since then count as new (passes that crashed before
    their rounds: which sources they stored is not known). With `reader`, the posts it read
    and matched during the pass are not read again."""
    found: list[tuple[Rule, str, int | None, str]] = []
    new_posts: list[NewPost] = []
    writers = _Writers(config)
    on_posts = [r for r in rules if r.kind in ("keyword", "spike")]
    if on_posts and (with_new or recover_since is not None):
        oldest = now - timedelta(seconds=config.alerting.max_age)
        if recover_since is not None:
            new_posts = load_new_posts(engine, None, min(since, recover_since), oldest)
            matched = match_posts(on_posts, new_posts)
        elif reader is not None:
            new_posts, matched = reader.finish(with_new, oldest)
        else:
            new_posts = load_new_posts(engine, with_new, since, oldest)
            matched = match_posts(on_posts, new_posts)
        for rule in on_posts:
            if rule.name not in matched:
                continue
            if rule.kind == "keyword":
                # The post's lines are written when it is sent, and only if it is listed.
                found += [(rule, f"post:{post.id}", post.id, "") for post in matched[rule.name]]
                continue
            settings = rule.config
            published, engagement = load_selection_times(engine, rule, now)
            by_engagement = settings.measure == "engagement"
            check = check_spike(
                published,
                now,
                settings.hours,
                settings.factor,
                settings.min_engagement if by_engagement else settings.min_posts,
                engagement if by_engagement else None,
            )
            if check.fired:
                period = spike_period(now, settings.hours).isoformat()
                item = writers.of(rule).spike_item(
                    check, settings.query, BASELINE_WEEKS, settings.measure
                )
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
    events = [
        NewEvent(rule.name, rule.kind, key, post_id, channel.label, item)
        for rule, key, post_id, item in found
        for channel in channels.of(rule)
    ]
    return FoundEvents(events, {post.id: post for post in new_posts})


class PassReader:
    """A pass's new posts, read and matched while the pass stores them (in the alert process,
    on the other core), so that its round after the pass reads and matches only the last few.

    Each `read` takes the posts stored since the last one (by id: one writer per collecting
    process stores its posts in order), first seen since the pass began; the first, those with
    ids above `after_id`. `finish` asks for the
    ids the round wants (its sources' posts of the pass), and reads and matches only those it
    does not have: the answer is the round's without a reader, whatever the order of ids."""

    def __init__(self, config: Config, engine: Engine, since: datetime, after_id: int = 0) -> None:
        self.engine = engine
        self.since = since
        self.max_age = timedelta(seconds=config.alerting.max_age)
        self.rules = [
            compile_rule(rule) for rule in config.alerts if rule.kind in ("keyword", "spike")
        ]
        self.posts: dict[int, NewPost] = {}
        self.matched: dict[int, list[str]] = {}  # post id -> the rules it matched
        # Read from the newest post when the pass began (`newest_post_id`): from 0, the first
        # read walked every stored post (50,000: 70 ms of CPU taken from the pass).
        self.last_id = after_id

    def read(self, now: datetime) -> None:
        """Read and match the posts stored since the last call."""
        if not self.rules:
            return
        stored = self.engine.dialect.name == "sqlite"
        query = _post_query(stored).where(
            posts.c.id > self.last_id,
            posts.c.first_seen_at >= self.since,
            posts.c.published_at >= now - self.max_age,
        )
        with self.engine.connect() as connection:
            self._add([_new_post(row, stored) for row in connection.execute(query)])

    def finish(
        self, source_keys: Sequence[str], oldest: datetime
    ) -> tuple[list[NewPost], dict[str, list[NewPost]]]:
        """The posts of these sources first seen since the pass began and published since
        `oldest`, and per rule those it matches, oldest first (as `match_posts` answers)."""
        wanted = set(find_new_post_ids(self.engine, source_keys, self.since, oldest))
        missing = sorted(wanted - self.posts.keys())
        if missing:
            self._add(load_posts(self.engine, missing, with_stems=True).values())
        found = [self.posts[i] for i in sorted(wanted)]
        by_rule: dict[str, list[NewPost]] = {}
        for post in sorted(found, key=lambda p: (p.published_at, p.id)):
            for name in self.matched[post.id]:
                by_rule.setdefault(name, []).append(post)
        return found, by_rule

    def _add(self, found: Iterable[NewPost]) -> None:
        batch = [post for post in found if post.id not in self.posts]
        for post in batch:
            self.posts[post.id] = post
            self.matched[post.id] = []
            self.last_id = max(self.last_id, post.id)
        for name, matching in match_posts(self.rules, batch).items():
            for post in matching:
                self.matched[post.id].append(name)


class _Channels:
    """Each rule's channels, read once a round and only for rules with something to send."""

    def __init__(self) -> None:
        self.by_rule: dict[str, list[Channel]] = {}

    def of(self, rule: Rule) -> list[Channel]:
        if rule.name not in self.by_rule:
            self.by_rule[rule.name] = rule_channels(rule.config)
        return self.by_rule[rule.name]


class _Writers:
    """One AlertWriter per language, for the spike and silence events a round finds (a post's
    lines are the delivery process's to write). Made at the first such event: most rounds have
    none, and the writer's imports (Babel) are not free."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.writers: dict[str, AlertWriter] = {}

    def of(self, rule: Rule) -> AlertWriter:
        from monitor.alerts.message import AlertWriter

        language = _language(self.config, rule)
        if language not in self.writers:
            self.writers[language] = AlertWriter(
                language, self.config.digest.timezone, self.config.web.public_url
            )
        return self.writers[language]


def _language(config: Config, rule: Rule) -> str:
    return rule.config.language or config.digest.language


def _post_query(stored: bool) -> sa.Select[tuple[object, ...]]:
    """The columns a NewPost is made of, with the stems SQLite's index keeps when `stored`."""
    joined = posts.join(sources, sources.c.id == posts.c.source_id)
    stem_columns: list[sa.ColumnElement[str]] = []
    if stored:
        joined = joined.outerjoin(STORED_STEMS, STORED_STEMS.c.id == posts.c.id)
        stem_columns = [STORED_STEMS.c.c0, STORED_STEMS.c.c1]
    return (
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
        .where(posts.c.deleted_at.is_(None), posts.c.erased_at.is_(None))
    )


def _new_post(row: sa.Row[tuple[object, ...]], stored: bool) -> NewPost:
    return NewPost(
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


def load_new_posts(
    engine: Engine, source_keys: Sequence[str] | None, since: datetime, oldest: datetime
) -> list[NewPost]:
    """The posts of these sources (None: of every source) first seen at or after `since` and
    published at or after `oldest`, neither deleted nor erased."""
    # SQLite's index keeps each post's stems (migration 0007): read, they need not be made
    # again (half the cost of matching a busy pass). PostgreSQL's tsvector is not the same.
    stored = engine.dialect.name == "sqlite"
    query = _post_query(stored).where(
        posts.c.published_at >= oldest, posts.c.first_seen_at >= since
    )
    batches = [None] if source_keys is None else list(chunks(sorted(source_keys), KEY_BATCH))
    found: list[NewPost] = []
    with engine.connect() as connection:
        for keys in batches:
            chosen = query if keys is None else query.where(sources.c.key.in_(keys))
            found += [_new_post(row, stored) for row in connection.execute(chosen)]
    return found


def find_new_post_ids(
    engine: Engine, source_keys: Sequence[str], since: datetime, oldest: datetime
) -> list[int]:
    """The ids of what `load_new_posts` reads (of these sources), without reading the posts."""
    joined = posts.join(sources, sources.c.id == posts.c.source_id)
    found: list[int] = []
    with engine.connect() as connection:
        for keys in chunks(sorted(source_keys), KEY_BATCH):
            query = (
                sa.select(posts.c.id)
                .select_from(joined)
                .where(
                    sources.c.key.in_(keys),
                    posts.c.published_at >= oldest,
                    posts.c.first_seen_at >= since,
                    posts.c.deleted_at.is_(None),
                    posts.c.erased_at.is_(None),
                )
            )
            found += connection.execute(query).scalars()
    return found


def load_posts(engine: Engine, ids: Sequence[int], with_stems: bool = False) -> dict[int, NewPost]:
    """The posts with these ids that are neither deleted nor erased; `with_stems`: with the
    stems SQLite's index keeps, for matching."""
    stored = with_stems and engine.dialect.name == "sqlite"
    found: dict[int, NewPost] = {}
    with engine.connect() as connection:
        for batch in chunks(sorted(ids), KEY_BATCH):
            for row in connection.execute(_post_query(stored).where(posts.c.id.in_(batch))):
                found[row.id] = _new_post(row, stored)
    return found


def _selection_filter(rule: Rule) -> PostFilter:
    config = rule.config
    return PostFilter(
        platforms=config.platforms,
        sources=config.sources,
        organisations=config.organisations,
        groups=config.groups,
    )


def load_selection_times(
    engine: Engine, rule: Rule, now: datetime
) -> tuple[list[datetime], list[int]]:
    """When the rule's selection posted in the windows a spike check compares (the last
    `hours`, and the same hours of each of the BASELINE_WEEKS weeks before), and each post's
    engagement at its latest count (0 when never counted)."""
    span = timedelta(hours=rule.config.hours)
    windows = [
        sa.and_(
            posts.c.published_at > now - timedelta(weeks=k) - span,
            posts.c.published_at <= now - timedelta(weeks=k),
        )
        for k in range(BASELINE_WEEKS + 1)
    ]
    columns = [posts.c.published_at, sa.func.coalesce(posts.c.engagement, 0).label("engagement")]
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
    matcher = rule.matcher
    if matcher is not None:
        rows = [row for row in rows if matcher.matches(PostStems.of(row.title, row.text))]
    return [row.published_at for row in rows], [int(row.engagement) for row in rows]


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
    send: Send,
    rules: Sequence[Rule],
    claimed: Sequence[Claimed],
    now: datetime,
    channels: _Channels,
    known: dict[int, NewPost],
) -> AlertReport:
    """One message per rule and channel, listing its claimed events; then each outcome."""
    by_name = {rule.name: rule for rule in rules}
    groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
    for claim in claimed:
        groups[(claim.rule, claim.channel)].append(claim)
    cap = config.alerting.max_items
    batches = [sorted(batch, key=lambda c: c.id) for batch in groups.values()]
    # Only listed events need their post; a retried one's was not read by this round.
    listed = [c for batch in batches for c in batch[:cap]]
    wanted = [c.post_id for c in listed if c.post_id is not None and c.post_id not in known]
    posts_by_id = known | load_posts(engine, wanted) if wanted else known
    errors: list[str | None] = []
    gone: set[int] = set()  # deliveries to channels no longer configured: not retried
    outgoing: list[tuple[int, Outgoing]] = []
    for index, batch in enumerate(batches):
        rule = by_name[batch[0].rule]
        label = batch[0].channel
        channel = next((c for c in channels.of(rule) if c.label == label), None)
        errors.append(None)
        if channel is None:
            gone.add(index)
            errors[index] = "the rule no longer sends to this channel"
        elif channel.url is None:
            errors[index] = channel.problem or "no URL"
        else:
            items = tuple(_item(claim, posts_by_id) for claim in batch[:cap])
            message = Outgoing(
                channel=channel,
                rule=rule.name,
                kind=rule.kind,
                language=_language(config, rule),
                items=tuple(item for item in items if item is not None),
                count=len(batch),
                measure=rule.config.measure,
            )
            outgoing.append((index, message))
    for (index, _), error in zip(outgoing, send([m for _, m in outgoing]), strict=True):
        errors[index] = error
    delivered_at = datetime.now(UTC)
    sent_ids: list[int] = []
    failures = []
    for index, (batch, error) in enumerate(zip(batches, errors, strict=True)):
        rule_name, label = batch[0].rule, batch[0].channel
        if error is None:
            sent_ids += [c.id for c in batch]
            log.info("alert rule=%r channel=%s events=%d status=sent", rule_name, label, len(batch))
            continue
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
    return AlertReport(len(batches) - len(failures), len(failures), tuple(failures))


def _item(claim: Claimed, posts_by_id: dict[int, NewPost]) -> str | NewPost | None:
    """What a message lists for a claimed event: a post's event its post, for the delivery
    process to write the lines of (None when the post was deleted or erased since: it is only
    counted, never shown from lines kept before); a spike's or silence's its stored lines."""
    if claim.kind == "keyword":
        return posts_by_id.get(claim.post_id) if claim.post_id is not None else None
    return claim.item
