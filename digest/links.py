"""Links in a digest: only http(s) and mailto, checked, and personalised per recipient; and
the links into the web app (`[web] public_url`): the recipient page, one-click unsubscribe,
view in browser, and the search behind each "och N till".

Shared by the rendered footer and the List-Unsubscribe header, so that both say the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from urllib.parse import quote, urlencode

from digest.model import DigestData, Recipient
from monitor.config import Config, WebConfig
from monitor.tokens import MIN_SECRET_BYTES, read_secret, sign


def personalise_url(url: str | None, email: str) -> str | None:
    """A configured link with `{email}` replaced by the recipient's address, URL-encoded: one
    unsubscribe or settings link per person, so the page it opens knows who clicked."""
    return None if url is None else url.replace("{email}", quote(email, safe=""))


def http_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: checked here again although the builder promises it,
    because a `javascript:` or `data:` link in a mail is an attack, not a broken link."""
    if not url:
        return None
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        return None
    if any(ord(char) < 0x21 or char in "\"'<>\\`" for char in url):
        return None  # a well-formed URL has these percent-encoded; raw ones smell of injection
    return url


def mailto_url(address: str | None) -> str | None:
    """`mailto:` link for the unsubscribe address (given with or without the scheme)."""
    if not address:
        return None
    address = address.strip().removeprefix("mailto:")
    if not address or any(ord(char) < 0x21 or char in "\"'<>\\`" for char in address):
        return None
    return f"mailto:{address}"


def unsubscribe_links(
    mailto: str | None,
    url: str | None,
    email: str,
    *,
    sender: str | None = None,
    one_click: str | None = None,
) -> list[str]:
    """The recipient's ways to unsubscribe, each checked: mailto first (RFC 2369 lists them in
    the sender's order of preference), then the page with `{email}` filled in.

    `one_click` (the web app's signed `/r/{token}/unsubscribe`) takes the configured page's
    place: it unsubscribes without anyone reading a mail. With neither a mailto nor a page
    configured, or beside the one-click link, a mail to the `sender` (the From header) with
    the subject "unsubscribe": Gmail and Yahoo require every bulk message to offer a way out,
    and clients that cannot POST fall back to the mailto.
    """
    mail = mailto_url(mailto)
    page = http_url(one_click) or http_url(personalise_url(url, email))
    if mail is None and sender and (page is None or one_click):
        fallback = mailto_url(parseaddr(sender)[1])
        mail = None if fallback is None else f"{fallback}?subject=unsubscribe"
    return [link for link in (mail, page) if link]


@dataclass(frozen=True)
class WebLinks:
    """Where one recipient's digest links into the web app, under `[web] public_url`.

    The paths are the contract with the web app (issue 12): `/r/{token}` the recipient page,
    `/r/{token}/unsubscribe` the one-click unsubscribe (RFC 8058), `/r/{token}/digests/{id}`
    this very message in the browser, and `/search?…` the search page with its filters.
    """

    public_url: str  # https (http only on loopback), no trailing slash: `WebConfig` sees to both
    token: str | None = None  # the recipient's signed token; None without the secret
    digest_id: int | None = None  # `digests.id` of this message; None when nothing is claimed

    @property
    def recipient_page(self) -> str | None:
        return None if self.token is None else f"{self.public_url}/r/{self.token}"

    @property
    def one_click(self) -> str | None:
        page = self.recipient_page
        return None if page is None else f"{page}/unsubscribe"

    @property
    def view_in_browser(self) -> str | None:
        page = self.recipient_page
        if page is None or self.digest_id is None:
            return None
        return f"{page}/digests/{self.digest_id}"

    def search(self, filters: Sequence[tuple[str, str]]) -> str:
        return f"{self.public_url}/search?{urlencode(filters)}"


def make_web_links(
    web: WebConfig, secret: bytes | None, email: str, digest_id: int | None = None
) -> WebLinks | None:
    """The recipient's links into the web app; None without `[web] public_url`. Without the
    secret (`tokens.read_secret`) only the search links remain: nothing signed."""
    if web.public_url is None:
        return None
    token = None if secret is None else sign(secret, email)
    return WebLinks(web.public_url, token, digest_id)


def describe_web_links(config: Config) -> tuple[str | None, str | None]:
    """`config check`'s line on the links digests carry into the web app (None without
    `[web] public_url`), and a one-line warning when the secret that signs them is missing."""
    web = config.web
    if web.public_url is None:
        return None, None
    if read_secret(config) is not None:
        return (
            f"Digest links: {web.public_url} (view in browser, one-click unsubscribe, "
            f"recipient page, searches; signed with {web.secret_env})"
        ), None
    reason = (
        f"holds fewer than {MIN_SECRET_BYTES} characters"
        if os.environ.get(web.secret_env)
        else "is not set"
    )
    return f"Digest links: {web.public_url} (searches only)", (
        f"warning: [web] public_url is set but the environment variable {web.secret_env} "
        f"{reason}: digests carry no view-in-browser, one-click unsubscribe or recipient-page "
        f"links; set it to a random secret of at least {MIN_SECRET_BYTES} characters"
    )


@dataclass(frozen=True)
class MoreLinks:
    """Where each "och N till" leads: the search page showing the section's whole list.

    None where there is no web app, or where a section's rest is not a list of posts (trends,
    domains, the tables, channel changes): the search page lists posts, and a link under a list
    of words that opened a list of posts would promise what it does not show.
    """

    mentions: str | None = None
    top_posts: str | None = None
    dialog: str | None = None
    videos: str | None = None
    news: Mapping[str, str] = field(default_factory=dict)  # organisation -> its news of the week
    news_organisations: str | None = None


def find_more_links(data: DigestData, web: WebLinks | None) -> MoreLinks:
    """The search for each post section's full list, as close as the search filters allow.

    What each section asks for, and why:
    - every section: the digest week's Monday to Sunday (local dates), and what the recipient
      follows (`follow_filters`);
    - mentions: the keywords as quoted phrases joined by OR, newest first as the section lists
      them (search stems words where the digest matches text, so the two can differ slightly);
    - top posts: every post someone engaged with (`min_engagement=1`): the section ranks only
      such posts, by engagement relative to each platform, which no search filter can
      reproduce; a threshold at the last post shown would drop posts of other platforms that
      rank lower with less raw engagement;
    - dialog: likewise the engaged posts; search has no filter for replies alone;
    - videos: `kind=video`;
    - an organisation's news: that organisation's posts of the week; news are the posts without
      counts, which search cannot tell apart, so its counted posts are listed too;
    - "och N organisationer till": the week's posts of everything followed.
    """
    if web is None:
        return MoreLinks()
    week = [("since", data.week.first_day.isoformat()), ("until", data.week.last_day.isoformat())]
    follow = follow_filters(data.recipient)
    engaged = [*follow, *week, ("min_engagement", "1")]
    keywords = [k.replace('"', " ").strip() for k in data.recipient.keywords]
    query = " OR ".join(f'"{k}"' for k in keywords if k)
    platforms = [("platform", p) for p in data.recipient.platforms]
    groups = [pair for pair in follow if pair[0] == "group"]
    return MoreLinks(
        mentions=web.search([("q", query), *follow, *week, ("sort", "newest")]) if query else None,
        top_posts=web.search(engaged),
        dialog=web.search(engaged),
        videos=web.search([*follow, ("kind", "video"), *week]),
        news={
            item.organisation: web.search(
                [("organisation", item.organisation), *groups, *platforms, *week]
            )
            for item in data.news
        },
        news_organisations=web.search([*follow, *week]),
    )


def follow_filters(recipient: Recipient) -> list[tuple[str, str]]:
    """Search filters for what a recipient follows.

    The digest adds groups and organisations up (`compose.select_followed`: the municipalities
    and also the police) where search combines different filters with AND; a recipient with
    both gets neither, so the list shown holds more than the digest counted rather than less.
    Platforms narrow in both.
    """
    pairs: list[tuple[str, str]] = []
    if recipient.groups and not recipient.organisations:
        pairs += [("group", name) for name in recipient.groups]
    elif recipient.organisations and not recipient.groups:
        pairs += [("organisation", name) for name in recipient.organisations]
    return pairs + [("platform", key) for key in recipient.platforms]
