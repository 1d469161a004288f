"""The post filters `posts search` and `export` share (monitor.filters.PostFilter): their
options, and the checks of the values given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import MAX_INTEGER, fail, parse_moment_option

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.filters import PostFilter

# The filters `posts search` and `export` share (monitor.filters.PostFilter).
SinceOption = Annotated[
    str | None, typer.Option(help="Published since (2026-11-01, 2026-11-01T08:00 or 7d).")
]
UntilOption = Annotated[
    str | None, typer.Option(help="Published before (a date means its first moment, UTC).")
]
PlatformsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--platform",
        help="Only this platform (repeat for several); youtube finds YouTube channels' feeds too.",
    ),
]
SourcesOption = Annotated[
    list[str] | None, typer.Option("--source", help="Only this source (its key).")
]
OrganisationsOption = Annotated[
    list[str] | None, typer.Option("--organisation", help="Only this organisation.")
]
GroupsOption = Annotated[
    list[str] | None, typer.Option("--group", help="Only sources in this group.")
]
KindsOption = Annotated[list[str] | None, typer.Option("--kind", help="Only this kind of post.")]
MinEngagementOption = Annotated[
    int | None,
    typer.Option(
        min=0, max=MAX_INTEGER, help="Latest likes+reposts+replies+quotes+reactions at least."
    ),
]


def post_filter(
    since: str | None,
    until: str | None,
    platform: list[str] | None,
    source: list[str] | None,
    organisation: list[str] | None,
    group: list[str] | None,
    kind: list[str] | None,
    min_engagement: int | None,
) -> PostFilter:
    """The PostFilter the shared options say, its platforms and kinds checked; the values
    that name what is stored are checked by `check_stored` once the database is open."""
    from monitor.filters import PostFilter
    from monitor.platforms import CHANNEL_KEYS
    from monitor.types import KINDS

    check_known("--platform", platform, CHANNEL_KEYS)
    check_known("--kind", kind, KINDS)
    return PostFilter(
        since=parse_moment_option("--since", since) if since else None,
        until=parse_moment_option("--until", until) if until else None,
        platforms=tuple(platform or ()),
        sources=tuple(source or ()),
        organisations=tuple(organisation or ()),
        groups=tuple(group or ()),
        kinds=tuple(kind or ()),
        min_engagement=min_engagement,
    )


def check_known(option: str, values: Sequence[str] | None, known: Sequence[str]) -> None:
    unknown = [v for v in values or () if v not in known]
    if unknown:
        expected = f"expected one of {', '.join(known)}" if known else "there are none"
        fail(f"{option}: unknown {', '.join(map(repr, unknown))}; {expected}")


def check_stored(engine: Engine, chosen: PostFilter) -> None:
    """A mistyped --source or --group fails loudly instead of matching nothing (it printed
    "no stored posts match" and exited 0)."""
    from monitor.sources import list_source_groups

    check_source_keys(engine, chosen.sources)
    if chosen.groups:
        check_known("--group", chosen.groups, list_source_groups(engine))


def check_source_keys(engine: Engine, keys: Sequence[str]) -> None:
    """A mistyped --source fails loudly instead of matching nothing."""
    from monitor.sources import find_unknown_source_keys

    unknown = find_unknown_source_keys(engine, keys)
    if unknown:
        fail(
            f"--source: no source with key {', '.join(map(repr, unknown))};"
            " `omvarld sources list --inactive` shows them"
        )
