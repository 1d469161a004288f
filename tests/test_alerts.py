"""Alerts end to end, as a user meets them: `omvarld collect` against a real loopback feed,
messages arriving at a real webhook receiver (Apprise json://) and a real SMTP server
(mailto://), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import make_engine
from monitor.models import alert_events
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer, flen_rss
from tests.smtpserver import Authenticator, start_server
from tests.storedata import alert_events_of as events
from tests.webhookserver import WebhookReceiver

runner = CliRunner()
NOW = datetime.now(UTC)


def omvarld(config: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--config", str(config), *args], env={"COLUMNS": "200"})


def rss(*items: tuple[str, str, timedelta]) -> bytes:
    """A feed of (guid, title, age) items, aged from this module's NOW."""
    return flen_rss(*items, now=NOW)


def rule(*notify: str, extra: str = "", name: str = "Kris i länet") -> str:
    urls = ", ".join(f'"{url}"' for url in notify)
    return (
        f'\n[[alerts]]\nname = "{name}"\nquery = "översvämning OR skogsbrand"\n'
        f"notify = [{urls}]\n{extra}\n"
    )


def setup(
    tmp_path: Path, database_url: str, feed_server: FeedServer, body: bytes, rules: str
) -> Path:
    url = feed_server.add("/flen.xml", body=body)
    # The rounds are waited for, and report in the output (background: test_alerts_background).
    settings = '[alerting]\nretry_after = 1\nbackground = false\n[web]\npublic_url = "https://omvarld.example.se"\n'
    config = write_config(
        tmp_path, database_url, settings + feed_source(url, "Flens kommun", key="flen") + rules
    )
    assert omvarld(config, "db", "upgrade").exit_code == 0
    return config


def started_alert_processes(caplog: pytest.LogCaptureFixture) -> int:
    """How many alert processes were started since the log was last cleared."""
    started = [r for r in caplog.records if r.getMessage().startswith("alert process ")]
    caplog.clear()
    return len(started)


def test_a_new_matching_post_is_one_message_and_an_unchanged_pass_sends_none(
    tmp_path: Path, database_url: str, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.alerts.alerter")
    with WebhookReceiver() as hook:
        body = rss(
            ("1", "Översvämning vid Skeboån", timedelta(hours=1)),
            ("2", "Julmarknad", timedelta(hours=2)),
        )
        config = setup(tmp_path, database_url, feed_server, body, rule(hook.apprise_url()))

        first = omvarld(config, "collect", "--all")
        assert first.exit_code == 0, first.output
        assert "Alerts: 1 sent, 0 failed" in first.stdout
        assert started_alert_processes(caplog) == 1
        (message,) = hook.messages()
        assert message["title"] == "Kris i länet: 1 nytt inlägg"
        lines = message["message"].splitlines()
        assert lines[0].startswith("Flens kommun · Webb/nyhetsflöde · ")
        assert lines[1:3] == ["Översvämning vid Skeboån", "https://www.flen.se/nyheter/1"]
        assert lines[3].startswith("I Omvärld: https://omvarld.example.se/posts/")

        # Unchanged: nothing new, nothing sent, nothing said, and no alert process started.
        again = omvarld(config, "collect", "--all")
        assert again.exit_code == 0 and "Alerts:" not in again.stdout
        assert started_alert_processes(caplog) == 0
        # A new matching post: a message about it alone.
        feed_server.add(
            "/flen.xml",
            body=rss(
                ("3", "Skogsbrand norr om Flen", timedelta(minutes=5)),
                ("1", "Översvämning vid Skeboån", timedelta(hours=1)),
                ("2", "Julmarknad", timedelta(hours=2)),
            ),
        )
        third = omvarld(config, "collect", "--all")
        assert "Alerts: 1 sent, 0 failed" in third.stdout
        assert len(hook.messages()) == 2
        assert hook.messages()[1]["message"].splitlines()[1] == "Skogsbrand norr om Flen"
    assert [(e.status, e.attempts) for e in events(database_url)] == [("sent", 1), ("sent", 1)]


def test_posts_published_before_max_age_are_not_alerted_however_new_to_us(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        backfill = rss(
            ("old-1", "Översvämning i våras", timedelta(days=3)),
            ("old-2", "Skogsbrand i somras", timedelta(days=20)),
            ("new", "Översvämning i dag", timedelta(hours=3)),
        )
        config = setup(tmp_path, database_url, feed_server, backfill, rule(hook.apprise_url()))
        assert omvarld(config, "collect", "--all").exit_code == 0
        (message,) = hook.messages()
    assert message["title"] == "Kris i länet: 1 nytt inlägg"
    assert "Översvämning i dag" in message["message"]
    assert "våras" not in message["message"] and "somras" not in message["message"]


def test_a_burst_is_one_message_with_the_first_posts_and_a_count_of_the_rest(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        burst = rss(*[(str(n), f"Översvämning {n}", timedelta(minutes=n)) for n in range(1, 13)])
        config = setup(tmp_path, database_url, feed_server, burst, rule(hook.apprise_url()))
        config.write_text(config.read_text().replace("retry_after = 1", "max_items = 10"))
        assert omvarld(config, "collect", "--all").exit_code == 0
        (message,) = hook.messages()
    assert message["title"] == "Kris i länet: 12 nya inlägg"
    assert message["message"].count("Flens kommun · ") == 10
    assert message["message"].endswith("… och 2 till")
    assert len(events(database_url)) == 12  # every post recorded as sent


def test_a_dead_receiver_beside_a_live_one_loses_nothing_and_is_retried(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as live, WebhookReceiver() as dead:
        dead.status = 500
        body = rss(("1", "Översvämning vid Skeboån", timedelta(hours=1)))
        notify = (live.apprise_url("/live"), dead.apprise_url("/dead"))
        config = setup(tmp_path, database_url, feed_server, body, rule(*notify))

        first = omvarld(config, "collect", "--all")
        assert first.exit_code == 0, first.output  # the collection succeeded
        assert "Alerts: 1 sent, 1 failed" in first.stdout
        assert f"alert failed: Kris i länet → json://127.0.0.1:{dead.port}/dead: " in first.stdout
        assert len(live.messages()) == 1
        status = omvarld(config, "status")
        assert "1 failed (to be retried), 0 given up" in status.stdout
        listed = omvarld(config, "alerts", "list")
        assert "failed, again" in listed.stdout

        dead.status = 200
        time.sleep(1.2)  # retry_after = 1
        retried = omvarld(config, "collect")  # nothing due: the retry goes anyway
        assert "Alerts: 1 sent, 0 failed" in retried.stdout
        (late,) = dead.messages()
        assert late["title"] == "Kris i länet: 1 nytt inlägg"
        assert "Översvämning vid Skeboån" in late["message"]
        assert len(live.messages()) == 1  # not sent twice
    assert sorted(
        (e.channel.endswith("/dead"), e.status, e.attempts) for e in events(database_url)
    ) == [
        (False, "sent", 1),
        (True, "sent", 2),
    ]


def test_retries_are_bounded_and_the_given_up_alert_is_shown(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as dead:
        dead.status = 503
        body = rss(("1", "Översvämning vid Skeboån", timedelta(hours=1)))
        config = setup(tmp_path, database_url, feed_server, body, rule(dead.apprise_url()))
        config.write_text(
            config.read_text().replace("retry_after = 1", "retry_after = 1\nmax_attempts = 2")
        )
        for _ in range(4):
            assert omvarld(config, "collect").exit_code == 0
            time.sleep(1.1)
        status = omvarld(config, "status")
        listed = omvarld(config, "alerts", "list")
    (event,) = events(database_url)
    assert (event.status, event.attempts, event.next_attempt_at) == ("failed", 2, None)
    assert "0 failed (to be retried), 1 given up: see `omvarld alerts list`" in status.stdout
    assert "failed, gave up" in listed.stdout
    assert "503" in (event.last_error or "") or "error" in (event.last_error or "").lower()


def test_mailto_delivers_through_a_real_smtp_server_and_secrets_stay_out_of_sight(
    tmp_path: Path, database_url: str, feed_server: FeedServer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    servers = start_server(authenticator=Authenticator(), auth_require_tls=False)
    smtp = next(servers)
    port = smtp.settings.port
    secret_url = (
        f"mailto://omvarld:hemligt@localhost?smtp=127.0.0.1&port={port}&mode=insecure"
        "&from=omvarld@example.se&to=kris@example.se"
    )
    monkeypatch.setenv("OMVARLD_KRIS_MAIL", secret_url)
    body = rss(("1", "Översvämning vid Skeboån", timedelta(hours=1)))
    rules = (
        '\n[[alerts]]\nname = "Kris i länet"\nquery = "översvämning"\nlanguage = "en"\n'
        'notify_env = ["OMVARLD_KRIS_MAIL"]\n'
    )
    config = setup(tmp_path, database_url, feed_server, body, rules)
    collected = omvarld(config, "collect", "--all")
    assert "Alerts: 1 sent, 0 failed" in collected.stdout, collected.output
    servers.close()
    assert smtp.logins == [(b"omvarld", b"hemligt")]
    (mail,) = smtp.mailbox.received
    assert mail["Subject"] == "Kris i länet: 1 new post"
    assert mail["To"] == "kris@example.se"
    text = mail.get_body(("plain",)).get_content()
    assert text.splitlines()[0].startswith("Flens kommun · Web/news feed · ")
    assert "Översvämning vid Skeboån" in text
    listed = omvarld(config, "alerts", "list")
    assert "$OMVARLD_KRIS_MAIL" in listed.stdout
    outputs = collected.output + listed.output + omvarld(config, "status").output
    assert "hemligt" not in outputs
    assert all("hemligt" not in e.channel for e in events(database_url))


def test_alerts_test_sends_a_sample_and_names_the_channel_that_failed(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as live, WebhookReceiver() as dead:
        dead.status = 500
        config = setup(
            tmp_path,
            database_url,
            feed_server,
            rss(),
            rule(live.apprise_url(), dead.apprise_url("/dead")),
        )
        result = omvarld(config, "alerts", "test", "Kris i länet")
        (sample,) = live.messages()
    assert result.exit_code == 1
    assert f"json://127.0.0.1:{live.port}/hook: sent" in result.stdout
    assert f"json://127.0.0.1:{dead.port}/dead: failed: " in result.stdout
    assert sample["title"] == "Omvärld: test av regeln Kris i länet"
    assert events(database_url) == []  # a test records nothing
    unknown = omvarld(config, "alerts", "test", "Ingen sådan")
    assert unknown.exit_code == 2
    assert "no [[alerts]] rule named 'Ingen sådan' (rules: 'Kris i länet')" in unknown.output


def test_a_spike_rule_fires_once_for_a_burst_of_matching_posts(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        burst = rss(
            *[(str(n), f"Översvämning {n}", timedelta(minutes=10 * n)) for n in range(1, 7)]
        )
        rules = (
            f'\n[[alerts]]\nname = "Översvämningar"\nkind = "spike"\nquery = "översvämning"\n'
            f'notify = ["{hook.apprise_url()}"]\nhours = 3\nfactor = 3.0\nmin_posts = 5\n'
        )
        config = setup(tmp_path, database_url, feed_server, burst, rules)
        assert omvarld(config, "collect", "--all").exit_code == 0
        feed_server.add(
            "/flen.xml",
            body=rss(
                ("7", "Översvämning 7", timedelta(minutes=1)),
                *[(str(n), f"Översvämning {n}", timedelta(minutes=10 * n)) for n in range(1, 7)],
            ),
        )
        assert omvarld(config, "collect", "--all").exit_code == 0
        messages = hook.messages()
    # Once per three-hour period: the seventh post is part of the same spike (unless the
    # period turned between the passes, which a test run does not wait for).
    assert len(messages) in (1, 2)
    assert messages[0]["title"] == "Översvämningar: ovanligt många inlägg"
    assert messages[0]["message"].startswith("6 inlägg de senaste 3 timmarna mot i snitt 0")
    assert (
        "Sök i Omvärld: https://omvarld.example.se/search?q=%C3%B6versv%C3%A4mning"
        in messages[0]["message"]
    )


def test_a_silence_rule_names_a_regular_source_that_went_quiet_once(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        # Every other day from 9 to 29 days ago, then nothing.
        regular = rss(*[(str(d), f"Nyhet {d}", timedelta(days=d)) for d in range(9, 30, 2)])
        rules = (
            f'\n[[alerts]]\nname = "Tyst kommun"\nkind = "silence"\nsources = ["flen"]\n'
            f'notify = ["{hook.apprise_url()}"]\ndays = 7\nmin_posts = 5\n'
        )
        config = setup(tmp_path, database_url, feed_server, regular, rules)
        assert omvarld(config, "collect", "--all").exit_code == 0
        assert omvarld(config, "collect", "--all").exit_code == 0  # still quiet: not again
        (message,) = hook.messages()
    assert message["title"] == "Tyst kommun: 1 källa har tystnat"
    assert message["message"].startswith(
        "Flens kommun (flen, Webb/nyhetsflöde) har inte publicerat något sedan "
    )
    assert message["message"].endswith(", 7 dagar; 11 inlägg de fyra veckorna dessförinnan.")


def test_config_check_names_each_bad_rule_on_one_line(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    rules = (
        '\n[[alerts]]\nname = "Trasig"\nquery = "\\"översvämning"\nnotify = ["json://x/y"]\n'
        '\n[[alerts]]\nname = "Fel grupp"\nquery = "brand"\ngroups = ["regioner"]\n'
        'notify = ["json://x/y"]\n'
        '\n[[alerts]]\nname = "Fel grupp"\nkind = "silence"\nnotify = ["json://x/y"]\n'
    )
    config = setup_unchecked(tmp_path, database_url, feed_server, rules)
    result = omvarld(config, "config", "check")
    assert result.exit_code == 2
    ends = [line.split(": ", 1)[1] for line in result.output.splitlines()]
    assert ends == [
        "alerts[1].query: unbalanced quote in '\"översvämning': close the phrase with \""
        ' or remove the lone "',
        "alerts[2].groups: no configured source has group 'regioner'",
        "alerts[3].name: a second rule named 'Fel grupp'",
    ]
    assert "Traceback" not in result.output

    bad_url = rule("bogus://nowhere", "json://127.0.0.1:9/ok")
    config = setup_unchecked(tmp_path, database_url, feed_server, bad_url)
    checked = omvarld(config, "config", "check")
    assert checked.exit_code == 2
    assert "alerts[1].notify[1]: Apprise cannot use a bogus:// URL" in checked.output
    assert "notify[2]" not in checked.output
    assert "Alerts: 1 rule (1 keyword), 2 channels" in checked.stdout


def setup_unchecked(tmp_path: Path, database_url: str, feed_server: FeedServer, rules: str) -> Path:
    url = feed_server.add("/flen.xml", body=rss())
    return write_config(
        tmp_path, database_url, feed_source(url, "Flens kommun", key="flen") + rules
    )


def test_daily_upkeep_prunes_old_deliveries_but_keeps_a_quiet_spell_announced(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    from monitor.config import load_config
    from monitor.service import run_upkeep

    config = load_config(setup(tmp_path, database_url, feed_server, rss(), rule("json://x/y")))
    engine = make_engine(database_url)
    old, recent = NOW - timedelta(days=91), NOW - timedelta(days=89)
    rows = [
        ("keyword", "post:1", old),
        ("keyword", "post:2", recent),
        ("spike", "spike:2026-09-06T06:00:00+00:00", old),
        ("silence", "silence:flen:2026-08-01T08:00:00+00:00", old),
    ]
    with engine.begin() as connection:
        connection.execute(
            alert_events.insert(),
            [
                {
                    "rule": "Kris i länet", "kind": kind, "event_key": key, "channel": "json://x/y",
                    "status": "sent", "item": "…", "attempts": 1, "created_at": at,
                    "claimed_at": at,
                }
                for kind, key, at in rows
            ],
        )  # fmt: skip
    report = run_upkeep(engine, config, NOW)
    engine.dispose()
    assert report.alerts_pruned == 2
    assert [e.event_key for e in events(database_url)] == [
        "post:2",
        "silence:flen:2026-08-01T08:00:00+00:00",
    ]
