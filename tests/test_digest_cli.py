"""`omvarld digest preview | send | list | show` as an admin runs them, against a real SMTP
server on loopback and a database filled by collecting a sample feed."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from monitor.cli import app
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer
from tests.smtpserver import Server

runner = CliRunner()

# The sample feed has two posts in 2026-W47 (16–22 November) and one in W48.
WEEK = "2026-W47"
EMPTY_WEEK = "2026-W10"


def digest(config: Path, *args: str) -> Result:
    return runner.invoke(app, ["--config", str(config), "digest", *args], env={"COLUMNS": "250"})


def make_config(
    tmp_path: Path, database_url: str, feed_server: FeedServer, smtp: Server, extra: str = ""
) -> Path:
    """A config with one collected feed, SMTP on loopback, Anna (all sources, a digest even
    when empty) and Bo (follows an organisation without posts, wants no empty digests)."""
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    body = f"""
        [digest]
        from = "Omvärld <omvarld@kommun.example.se>"
        unsubscribe_url = "https://kommun.example.se/avregistrera"

        [smtp]
        host = "127.0.0.1"
        port = {smtp.settings.port}
        security = "none"
        timeout = 5
        {extra}

        [[recipients]]
        email = "anna@example.se"
        name = "Anna Ångström"
        skip_empty = false

        [[recipients]]
        email = "bo@example.se"
        organisations = ["Ingen kommun"]

    """
    config = write_config(tmp_path, database_url, body + feed_source(url, key="katrineholm"))
    base = ["--config", str(config)]
    assert runner.invoke(app, [*base, "db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, [*base, "collect", "--all"]).exit_code == 0
    return config


@pytest.fixture
def config(tmp_path: Path, database_url: str, feed_server: FeedServer, smtp: Server) -> Path:
    return make_config(tmp_path, database_url, feed_server, smtp)


def rows(result: Result) -> dict[str, str]:
    """Table rows of the output by their first cell."""
    return {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}


def test_send_delivers_once_skips_the_empty_digest_and_a_rerun_sends_nothing(
    config: Path, smtp: Server
) -> None:
    first = digest(config, "send", "--week", WEEK)

    assert first.exit_code == 0, first.output
    assert "│ sent " in rows(first)["anna@example.se"]
    assert "│ skipped " in rows(first)["bo@example.se"]
    assert "2026-W47 via SMTP 127.0.0.1" in first.stdout
    assert "1 sent, 1 skipped, 0 failed, 0 done earlier or in progress" in first.stdout
    [message] = smtp.mailbox.received
    assert message["To"].addresses[0].addr_spec == "anna@example.se"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_body(preferencelist=("html",)) is not None

    again = digest(config, "send", "--week", WEEK)
    assert again.exit_code == 0
    assert "│ sent (earlier) " in rows(again)["anna@example.se"]
    assert "0 sent, 0 skipped, 0 failed, 2 done earlier or in progress" in again.stdout
    assert len(smtp.mailbox.received) == 1


def test_list_and_show_read_the_archive(config: Path, smtp: Server) -> None:
    assert digest(config, "list").stdout.strip() == "No digests archived."
    digest(config, "send", "--week", WEEK)

    listed = digest(config, "list", "--week", WEEK)
    assert listed.exit_code == 0
    [(anna_id, anna)] = [(key, line) for key, line in rows(listed).items() if "anna@" in line]
    assert "│ sent " in anna
    assert any("bo@example.se" in line and "skipped" in line for line in rows(listed).values())

    received = smtp.mailbox.received[0]
    text = received.get_body(preferencelist=("plain",))
    assert text is not None
    shown = digest(config, "show", "--recipient", "anna@example.se", "--week", WEEK)
    assert shown.exit_code == 0
    assert f"Subject: {received['Subject']}" in shown.stdout
    assert shown.stdout.splitlines()[-3:] == text.get_content().splitlines()[-3:]
    by_id = digest(config, "show", anna_id)
    assert by_id.stdout == shown.stdout

    missing = digest(config, "show", "99")
    assert missing.exit_code == 2
    assert "no digest with id 99" in missing.output


def test_preview_writes_files_and_neither_sends_nor_records(
    config: Path, smtp: Server, tmp_path: Path
) -> None:
    result = digest(config, "preview", "--week", WEEK)

    assert result.exit_code == 0, result.output
    outbox = tmp_path / "outbox"  # next to the config
    assert sorted(p.name for p in outbox.iterdir()) == [
        "2026-W47-anna@example.se.eml",
        "2026-W47-anna@example.se.html",
        "2026-W47-bo@example.se.eml",
        "2026-W47-bo@example.se.html",
    ]
    assert "empty: would be skipped" in rows(result)["bo@example.se"]
    eml = email.message_from_bytes(
        (outbox / "2026-W47-anna@example.se.eml").read_bytes(), policy=email.policy.default
    )
    assert eml.get_content_type() == "multipart/alternative"
    assert smtp.mailbox.received == []
    assert digest(config, "list").stdout.strip() == "No digests archived."


def test_dry_run_shows_who_would_get_what_and_changes_nothing(config: Path, smtp: Server) -> None:
    result = digest(config, "send", "--week", WEEK, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "│ send " in rows(result)["anna@example.se"]
    assert "│ skip (empty) " in rows(result)["bo@example.se"]
    assert "nothing sent or recorded" in result.stdout
    assert smtp.mailbox.received == []
    assert digest(config, "list").stdout.strip() == "No digests archived."


def test_dry_run_after_a_send_retries_the_failed_and_leaves_the_rest(
    config: Path, smtp: Server
) -> None:
    smtp.mailbox.refused["anna@example.se"] = "550 5.1.1 No such user"
    assert digest(config, "send", "--week", WEEK).exit_code == 1

    result = digest(config, "send", "--week", WEEK, "--dry-run")

    assert result.exit_code == 0, result.output
    assert re.search(r"│ retry +│ \S.* KB HTML", rows(result)["anna@example.se"])
    assert "│ leave (skipped) " in rows(result)["bo@example.se"]
    assert smtp.mailbox.received == []


def test_send_with_outbox_delivers_into_the_folder_once(
    config: Path, smtp: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "ut"
    first = digest(config, "send", "--week", WEEK, "--outbox", str(folder))
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-W47-anna@example.se.eml",
        "2026-W47-anna@example.se.html",
    ]
    assert smtp.mailbox.received == []

    again = digest(config, "send", "--week", WEEK)  # now through SMTP: already delivered
    assert "│ sent (earlier) " in rows(again)["anna@example.se"]
    assert smtp.mailbox.received == []


def test_a_refused_recipient_exits_1_and_is_listed_failed(config: Path, smtp: Server) -> None:
    smtp.mailbox.refused["anna@example.se"] = "550 5.1.1 No such user"

    result = digest(config, "send", "--week", WEEK, "--recipient", "anna@example.se")

    assert result.exit_code == 1
    assert "550 5.1.1 No such user" in rows(result)["anna@example.se"]
    listed = digest(config, "list", "--week", WEEK)
    assert any("failed" in line and "550" in line for line in rows(listed).values())


def test_an_unset_password_variable_exits_2_before_anything_is_claimed(
    tmp_path: Path,
    database_url: str,
    feed_server: FeedServer,
    smtp: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMVARLD_TEST_SMTP_PASSWORD", raising=False)
    extra = 'username = "omvarld"\npassword_env = "OMVARLD_TEST_SMTP_PASSWORD"'
    config = make_config(tmp_path, database_url, feed_server, smtp, extra)

    result = digest(config, "send", "--week", WEEK)

    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: [smtp] password_env: the environment variable OMVARLD_TEST_SMTP_PASSWORD is not set"
    )
    assert digest(config, "list").stdout.strip() == "No digests archived."


@pytest.mark.parametrize("command", ["preview", "send", "list"])
def test_a_bad_week_exits_2_with_one_line(config: Path, command: str) -> None:
    result = digest(config, command, "--week", "2026-W54")

    assert result.exit_code == 2
    assert result.output == "error: --week: expected an ISO week like 2026-W48, got '2026-W54'\n"


def test_a_recipient_not_in_the_config_exits_2(config: Path) -> None:
    result = digest(config, "send", "--recipient", "okand@example.se")

    assert result.exit_code == 2
    assert result.output.startswith("error: --recipient: okand@example.se is not among")


def test_an_empty_week_is_skipped_for_those_who_asked_and_sent_to_the_others(
    config: Path, smtp: Server
) -> None:
    result = digest(config, "send", "--week", EMPTY_WEEK)

    assert result.exit_code == 0
    assert "│ sent " in rows(result)["anna@example.se"]
    assert "│ skipped " in rows(result)["bo@example.se"]


def test_without_smtp_send_and_preview_write_to_the_configured_outbox(
    tmp_path: Path, database_url: str
) -> None:
    """One rule for every path: no [smtp] means the outbox, for `digest send` as for the
    scheduled send; `digest preview` writes into the same folder."""
    body = """
        [digest]
        outbox = "brev"

        [[recipients]]
        email = "anna@example.se"
        skip_empty = false
    """
    config = write_config(tmp_path, database_url, body)
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0

    sent = digest(config, "send", "--week", WEEK)

    assert sent.exit_code == 0, sent.output
    assert f"{WEEK} via outbox folder {tmp_path / 'brev'}: 1 sent" in sent.stdout
    assert sorted(p.name for p in (tmp_path / "brev").iterdir()) == [
        f"{WEEK}-anna@example.se.eml",
        f"{WEEK}-anna@example.se.html",
    ]
    for path in (tmp_path / "brev").iterdir():
        path.unlink()
    previewed = digest(config, "preview", "--week", WEEK)
    assert previewed.exit_code == 0, previewed.output
    assert len(list((tmp_path / "brev").glob("*.eml"))) == 1
    assert not (tmp_path / "outbox").exists()


def test_preview_onto_a_full_disk_says_so_in_one_line_and_leaves_no_partial_file(
    tmp_path: Path, database_url: str
) -> None:
    """The outbox on an 8 kB tmpfs, mounted in a private mount namespace (`unshare -rm`), where
    a digest does not fit: exit 1 and one line, no traceback, no `.eml.part` left behind."""
    body = """
        [[recipients]]
        email = "anna@example.se"
        skip_empty = false

        [[recipients]]
        email = "bo@example.se"
    """
    config = write_config(tmp_path, database_url, body)
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    full, listing = tmp_path / "full", tmp_path / "listing.txt"
    full.mkdir()
    mount = 'mount -t tmpfs -o size=8k tmpfs "$1"'
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: no private tmpfs to fill")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount, "sh", str(full)],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")

    script = (
        f'{mount} && "$2" -m monitor --config "$3" digest preview --week {WEEK} --outbox "$1";'
        ' code=$?; ls -A "$1" > "$4"; exit $code'
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(full), sys.executable, str(config),
         str(listing)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == (
        f"error: cannot write anna@example.se's digest to {full}: No space left on device;"
        " 0 of 2 written\n"
    )
    assert listing.read_text() == ""  # neither .eml.part nor .html.part
