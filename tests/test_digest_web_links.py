"""The digest's side of the web app, as an admin and a recipient meet it: opt-outs skipped by
`digest send` and the scheduled send, `digest list` and `digest resubscribe`, and with `[web]
public_url` the signed links every mailed digest carries (one-click unsubscribe, view in
browser, the recipient page) and the "and N more" searches. A real SMTP server on loopback,
the fixed database of tests/digestdata.py, both databases."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from digest.archive import list_digests, read_html_part, read_text_part
from digest.optouts import ONE_CLICK, record_opt_out
from monitor.cli import app
from monitor.config import Config
from monitor.models import digests
from monitor.tokens import verify
from tests.conftest import count
from tests.digestdata import CONFIG, fill, setup_config
from tests.smtpserver import Server

runner = CliRunner()

WEEK = "2026-W48"  # 23–29 November 2026 in the fixed database
PUBLIC_URL = "https://omvarld.example.se"
SECRET = "a-secret-of-more-than-sixteen-characters"
SECRET_ENV = "OMVARLD_WEB_SECRET"
ANNA = "anna@katrineholm.se"  # follows the group kommuner; Katrineholm has 4 news, 3 shown
PER = "per@example.se"  # follows X


def make_config(tmp_path: Path, engine: Engine, smtp: Server, web: str = "") -> Config:
    body = CONFIG.replace(
        "[digest]\n", '[digest]\nfrom = "Omvärld <omvarld@kommun.example.se>"\n', 1
    ).replace('platforms = ["x"]\n', 'platforms = ["x"]\nskip_empty = false\n', 1)
    body += f"""
[smtp]
host = "127.0.0.1"
port = {smtp.settings.port}
security = "none"
timeout = 5
{web}
"""
    config = setup_config(tmp_path, engine, body)
    fill(engine)
    return config


def run(config: Config, *args: str) -> Result:
    return runner.invoke(app, ["--config", str(config.path), *args], env={"COLUMNS": "250"})


def rows(result: Result) -> dict[str, str]:
    """Table rows of the output by their first cell."""
    return {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}


class Links(HTMLParser):
    """Every link of an HTML part: (href, its text)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text.strip()))
            self._href = None


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def unsubscribe_targets(message: EmailMessage) -> list[str]:
    return re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))


def test_an_opted_out_recipient_gets_nothing_until_resubscribed(
    tmp_path: Path, engine: Engine, smtp: Server
) -> None:
    config = make_config(tmp_path, engine, smtp)
    record_opt_out(engine, PER, datetime(2026, 12, 6, 9, 0, tzinfo=UTC), ONE_CLICK)

    dry = run(config, "digest", "send", "--week", WEEK, "--dry-run")
    assert "skip (unsubscribed 2026-12-06 via one-click)" in rows(dry)[PER]

    sent = run(config, "digest", "send", "--week", WEEK)
    assert sent.exit_code == 0, sent.output
    assert [m["To"].addresses[0].addr_spec for m in smtp.mailbox.received] == [ANNA]
    assert "│ skipped (unsubscribed 2026-12-06 via one-click) " in rows(sent)[PER]
    assert "1 sent, 0 skipped, 0 failed, 0 done earlier or in progress; 1 unsubscribed" in (
        sent.stdout
    )
    assert [r.recipient for r in list_digests(engine)] == [ANNA]  # nothing claimed for Per

    listed = run(config, "digest", "list")
    assert "Unsubscribed: no digests" in listed.stdout
    assert re.search(rf"│ {re.escape(PER)} +│ 2026-12-06 10:00 +│ one-click +│", listed.stdout)

    back = run(config, "digest", "resubscribe", PER.upper())
    assert back.exit_code == 0, back.output
    assert back.stdout.strip() == (
        f"{PER} will receive digests again (had unsubscribed 2026-12-06 via one-click)"
    )
    assert "Unsubscribed" not in run(config, "digest", "list").stdout

    next_week = run(config, "digest", "send", "--week", "2026-W49")
    assert next_week.exit_code == 0, next_week.output
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp.mailbox.received[1:]) == [
        ANNA,
        PER,
    ]


def test_resubscribing_someone_who_never_unsubscribed_is_one_line_and_exit_2(
    tmp_path: Path, engine: Engine, smtp: Server
) -> None:
    config = make_config(tmp_path, engine, smtp)

    result = run(config, "digest", "resubscribe", "nobody@example.se")

    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: nobody@example.se has not unsubscribed (no opt-out recorded); "
        "`omvarld digest list` shows who has"
    )


def test_the_scheduled_send_skips_an_opted_out_recipient(
    tmp_path: Path, engine: Engine, smtp: Server, caplog: pytest.LogCaptureFixture
) -> None:
    from monitor.service import _send_digests

    config = make_config(tmp_path, engine, smtp)
    record_opt_out(engine, ANNA, datetime(2026, 11, 30, 5, 0, tzinfo=UTC), ONE_CLICK)
    caplog.set_level(logging.INFO, logger="monitor.service")

    # Monday 07:00 in Stockholm after week 48: the scheduled send of that week.
    _send_digests(config, engine, (ANNA, PER), datetime(2026, 11, 30, 6, 0, tzinfo=UTC))

    assert [m["To"].addresses[0].addr_spec for m in smtp.mailbox.received] == [PER]
    assert count(engine, digests, digests.c.recipient == ANNA) == 0
    assert (
        f"digest week=2026-W48 recipient={ANNA} status=skipped "
        "(unsubscribed 2026-11-30 via one-click)"
    ) in caplog.messages


def test_with_public_url_and_secret_each_digest_carries_its_signed_links(
    tmp_path: Path, engine: Engine, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = make_config(tmp_path, engine, smtp, f'[web]\npublic_url = "{PUBLIC_URL}/"\n')

    sent = run(config, "digest", "send", "--week", WEEK, "--recipient", ANNA)

    assert sent.exit_code == 0, sent.output
    [message] = smtp.mailbox.received
    mailto, one_click = unsubscribe_targets(message)
    assert mailto == "mailto:omvarld@kommun.example.se?subject=unsubscribe"
    token = one_click.removeprefix(f"{PUBLIC_URL}/r/").removesuffix("/unsubscribe")
    assert one_click == f"{PUBLIC_URL}/r/{token}/unsubscribe"
    assert verify(SECRET.encode(), token) == ANNA
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    [record] = list_digests(engine, WEEK)
    view = f"{PUBLIC_URL}/r/{token}/digests/{record.id}"
    links = Links(html_of(message)).links
    assert links[0] == (view, "View in browser")
    assert text_of(message).splitlines()[:2] == [f"View in browser: {view}", ""]
    page = f"{PUBLIC_URL}/r/{token}"
    assert (page, page) in links  # the footer: what you follow, and unsubscribing
    assert "See what you follow or unsubscribe: " + page in text_of(message)

    [(more, _)] = [(href, text) for href, text in links if text == "and 1 more"]
    parts = urlsplit(more)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PUBLIC_URL}/search"
    assert parse_qs(parts.query) == {
        "organisation": ["Katrineholms kommun"],
        "group": ["kommuner"],
        "since": ["2026-11-23"],
        "until": ["2026-11-29"],
    }
    assert f"and 1 more: {more}" in re.sub(r"\s*\n\s*", " ", text_of(message))

    # The archive holds the message as mailed, for the web app's "view in browser" (SMTP
    # carries it with CRLF line ends, the archive with LF).
    assert record.message is not None
    assert (read_html_part(record.message) or "").splitlines() == html_of(message).splitlines()
    assert read_text_part(record.message).splitlines() == text_of(message).splitlines()


def test_without_the_secret_a_digest_has_no_signed_links_and_config_check_says_why(
    tmp_path: Path, engine: Engine, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config = make_config(tmp_path, engine, smtp, f'[web]\npublic_url = "{PUBLIC_URL}"\n')

    checked = run(config, "config", "check")
    assert checked.exit_code == 0, checked.output
    assert f"Digest links: {PUBLIC_URL} (searches only)" in checked.stdout
    warning = (
        f"warning: [web] public_url is set but the environment variable {SECRET_ENV} is not set: "
        "digests carry no view-in-browser, one-click unsubscribe or recipient-page links; "
        "set it to a random secret of at least 16 characters"
    )
    assert warning in checked.output.splitlines()

    sent = run(config, "digest", "send", "--week", WEEK, "--recipient", ANNA)

    assert sent.exit_code == 0, sent.output
    [message] = smtp.mailbox.received
    raw = message.as_string()
    assert "/r/" not in raw
    assert unsubscribe_targets(message) == ["mailto:omvarld@kommun.example.se?subject=unsubscribe"]
    assert message["List-Unsubscribe-Post"] is None
    links = Links(html_of(message)).links
    assert "View in browser" not in [text for _, text in links]
    [more] = [href for href, text in links if text == "and 1 more"]
    assert more.startswith(f"{PUBLIC_URL}/search?organisation=Katrineholms+kommun&")


def test_a_short_secret_is_named_as_too_short(
    tmp_path: Path, engine: Engine, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "kort")
    config = make_config(tmp_path, engine, smtp, f'[web]\npublic_url = "{PUBLIC_URL}"\n')

    checked = run(config, "config", "check")

    assert f"{SECRET_ENV} holds fewer than 16 characters" in checked.output
    assert "kort" not in checked.output  # a secret is never printed, not even a bad one


def test_without_web_the_digest_links_nowhere_new(
    tmp_path: Path, engine: Engine, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)  # a secret alone changes nothing
    config = make_config(tmp_path, engine, smtp)

    checked = run(config, "config", "check")
    sent = run(config, "digest", "send", "--week", WEEK, "--recipient", ANNA)

    assert "Digest links" not in checked.output and "public_url" not in checked.output
    assert sent.exit_code == 0, sent.output
    [message] = smtp.mailbox.received
    links = Links(html_of(message)).links
    assert not any("/r/" in href or "/search" in href for href, _ in links)
    assert "and 1 more" in [line.strip() for line in text_of(message).splitlines()]
