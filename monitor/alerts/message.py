"""The words of an alert, in the rule's language: plain text, one block per event, and a
message that lists a burst of them with a cap. Contains no I/O.

Post text is untrusted: it reaches the message only as plain text (markup removed by nh3), on
as few lines as it takes, and a link only when it is http(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from collectors.text import html_to_text
from digest.render import Formatter
from monitor.alerts.rules import NewPost, SourceActivity, SpikeCheck
from monitor.values import is_http_url

TITLE_CHARS = 200  # a post's title or first line, cut at a word beyond this

TEXTS = {
    "sv": {
        "keyword": "{rule}: {count}",
        "spike": "{rule}: ovanligt många inlägg",
        "spike_engagement": "{rule}: ovanligt mycket engagemang",
        "silence": "{rule}: {count} har tystnat",
        "post": "nytt inlägg",
        "posts": "nya inlägg",
        "source": "källa",
        "sources": "källor",
        "untitled": "(utan rubrik)",
        "in_omvarld": "I Omvärld",
        "more": "… och {count} till",
        "spike_item": (
            "{count} de senaste {hours} timmarna mot i snitt {baseline} samma veckodag och tid"
            " de {weeks} veckorna innan."
        ),
        "interactions": "{count} i engagemang (gillanden, delningar, kommentarer …) på inlägg",
        "silence_item": (
            "{organisation} ({source}, {platform}) har inte publicerat något sedan {last},"
            " {days} dagar; {count} de fyra veckorna dessförinnan."
        ),
        "search": "Sök i Omvärld",
        "test_title": "Omvärld: test av regeln {rule}",
        "test_body": (
            "Ett provmeddelande från Omvärld: larm från regeln {rule} når den här kanalen."
        ),
    },
    "en": {
        "keyword": "{rule}: {count}",
        "spike": "{rule}: unusually many posts",
        "spike_engagement": "{rule}: unusually much engagement",
        "silence": "{rule}: {count} gone quiet",
        "post": "new post",
        "posts": "new posts",
        "source": "source has",
        "sources": "sources have",
        "untitled": "(untitled)",
        "in_omvarld": "In Omvärld",
        "more": "… and {count} more",
        "spike_item": (
            "{count} in the last {hours} hours against {baseline} on average on the same weekday"
            " and hours of the {weeks} weeks before."
        ),
        "interactions": "{count} in engagement (likes, shares, comments …) on posts",
        "silence_item": (
            "{organisation} ({source}, {platform}) has published nothing since {last},"
            " {days} days; {count} in the four weeks before that."
        ),
        "search": "Search in Omvärld",
        "test_title": "Omvärld: testing the rule {rule}",
        "test_body": "A sample message from Omvärld: alerts of the rule {rule} reach this channel.",
    },
}


@dataclass(frozen=True)
class Message:
    title: str
    body: str


class AlertWriter:
    """Words for one rule's alerts in its language, times in the digest's time zone."""

    def __init__(self, language: str, timezone: str, public_url: str | None) -> None:
        self.fmt = Formatter(language, timezone)
        self.texts = TEXTS[language]
        self.public_url = public_url

    def post_item(self, post: NewPost) -> str:
        """Organisation · platform · published time, the title or first line, the links."""
        lines = [
            " · ".join(
                (
                    post.organisation,
                    self.fmt.platform(post.channel),
                    self.fmt.local(post.published_at),
                )
            ),
            headline(post.title, post.text, self.fmt) or self.texts["untitled"],
        ]
        if post.url and is_http_url(post.url):
            lines.append(post.url)
        if self.public_url:
            lines.append(f"{self.texts['in_omvarld']}: {self.public_url}/posts/{post.id}")
        return "\n".join(lines)

    def spike_item(
        self, check: SpikeCheck, query: str | None, weeks: int, measure: str = "posts"
    ) -> str:
        """The spike in one line: what was counted now against the weeks before; `measure`
        says what that is ("posts" or "engagement")."""
        hours = round((check.end - check.start).total_seconds() / 3600)
        if measure == "engagement":
            count = self.texts["interactions"].format(count=self.fmt.number(check.current))
        else:
            count = self.fmt.posts(check.current)
        line = self.texts["spike_item"].format(
            count=count,
            hours=hours,
            baseline=self.fmt.number(check.baseline),
            weeks=weeks,
        )
        if self.public_url and query:
            line += f"\n{self.texts['search']}: {self.public_url}/search?q={quote(query)}"
        return line

    def silence_item(self, source: SourceActivity, days: int) -> str:
        assert source.last_post_at is not None
        return self.texts["silence_item"].format(
            organisation=source.organisation,
            source=source.key,
            platform=self.fmt.platform(source.platform),
            last=self.fmt.local(source.last_post_at),
            days=days,
            count=self.fmt.posts(source.posts_before),
        )

    def message(
        self, rule: str, kind: str, items: Sequence[str], count: int, measure: str = "posts"
    ) -> Message:
        """One message for a burst of `count` events: a title counting them, the `items`
        given (the first few), and how many more there were. `measure`: what a spike rule
        counts."""
        if kind == "keyword":
            counted = f"{self.fmt.number(count)} {self.texts['post' if count == 1 else 'posts']}"
        else:
            counted = (
                f"{self.fmt.number(count)} {self.texts['source' if count == 1 else 'sources']}"
            )
        key = "spike_engagement" if kind == "spike" and measure == "engagement" else kind
        title = self.texts[key].format(rule=rule, count=counted)
        shown = list(items)
        if count > len(shown):
            shown.append(self.texts["more"].format(count=self.fmt.number(count - len(shown))))
        return Message(title, "\n\n".join(shown))

    def test_message(self, rule: str) -> Message:
        return Message(
            self.texts["test_title"].format(rule=rule), self.texts["test_body"].format(rule=rule)
        )


def headline(title: str | None, text: str | None, fmt: Formatter) -> str | None:
    """The title, else the text's first line, as plain text on one line."""
    for candidate in (title, text):
        plain = html_to_text(candidate)
        if plain:
            return fmt.shorten(plain.splitlines()[0], TITLE_CHARS)
    return None
