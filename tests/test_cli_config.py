"""The CLI's config and sources commands, in process and as a real `python -m monitor`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from monitor.cli import app
from monitor.opml import read_opml
from tests.conftest import feed_source, write_config

WIDE = {"COLUMNS": "200"}  # keep Rich tables on one line per row

OPML = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Kommuner</title></head>
  <body>
    <outline text="Sörmland" title="Sörmland">
      <outline text="Flens kommun" type="rss" xmlUrl="https://www.flen.se/rss"/>
      <outline text="Gnesta kommun" type="rss" xmlUrl="https://www.gnesta.se/rss"/>
      <outline text="Vingåkers kommun" type="rss" xmlUrl="https://www.vingaker.se/rss"/>
    </outline>
  </body>
</opml>
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own shell must not decide what these tests see.
    for name in ("OMVARLD_DATABASE_URL", "OMVARLD_CONFIG", "X_BEARER_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=WIDE)


def run_process(config: Path | str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **WIDE}
    for name in ("OMVARLD_DATABASE_URL", "OMVARLD_CONFIG", "X_BEARER_TOKEN"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def write_config_with_include(directory: Path, database_url: str, body: str = "") -> Path:
    """A config whose first line includes sources/*.toml (before any table header)."""
    path = write_config(directory, database_url, body)
    path.write_text(
        'include = ["sources/*.toml"]\n' + path.read_text(encoding="utf-8"), encoding="utf-8"
    )
    return path


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'omvarld.db'}"


def table_row(output: str, *cells: str) -> re.Pattern[str]:
    """A Rich table row holding these cells in order."""
    return re.compile(r"│\s*" + r"\s*│\s*".join(map(re.escape, cells)) + r"\s*│")


VALID_BODY = (
    feed_source("https://www.flen.se/rss", "Flens kommun")
    + 'groups = ["kommuner"]\n\n'
    + feed_source("https://www.katrineholm.se/rss", "Katrineholms kommun")
    + 'groups = ["kommuner", "sörmland"]\n\n'
    + textwrap.dedent(
        """\
        [[sources]]
        platform = "x"
        handle = "regionsormland"
        organisation = "Region Sörmland"
        groups = ["sörmland"]
        """
    )
)

BROKEN_BODY = textwrap.dedent(
    """\
    [[sources]]
    platform = "tiktok"
    handle = "flenskommun"
    organisation = "Flens kommun"

    [[sources]]
    platform = "feed"
    url = "https://www.gnesta.se/rss"
    organization = "Gnesta kommun"

    [[sources]]
    platform = "feed"
    organisation = "Vingåkers kommun"
    """
)


# ------------------------------------------------------------------------------ config check


def test_config_check_on_valid_file_summarises_platforms_groups_and_missing_token(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path), VALID_BODY)

    result = run(config, "config", "check")

    assert result.exit_code == 0, result.output
    assert f"{config}: valid, 3 sources (3 enabled)" in result.stdout
    assert table_row(result.stdout, "feed", "2").search(result.stdout)
    x_row = table_row(
        result.stdout, "x", "1", "credentials missing: set the environment variable X_BEARER_TOKEN"
    )
    assert x_row.search(result.stdout)
    assert table_row(result.stdout, "kommuner", "2").search(result.stdout)
    assert table_row(result.stdout, "sörmland", "2").search(result.stdout)
    assert result.stderr == ""


def test_config_check_says_nothing_about_x_token_once_it_is_set(tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path), VALID_BODY)

    result = CliRunner().invoke(
        app, ["--config", str(config), "config", "check"], env={**WIDE, "X_BEARER_TOKEN": "t"}
    )

    assert result.exit_code == 0, result.output
    assert "X_BEARER_TOKEN" not in result.stdout


def test_config_check_on_broken_file_prints_one_line_per_problem_and_exits_2(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path), BROKEN_BODY)

    result = run(config, "config", "check")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{config}:5: sources[1].platform: unknown platform 'tiktok'; "
        "expected one of feed, x, youtube, mastodon, bluesky, facebook, flickr",
        f"{config}:9: sources[2].organisation: missing required key",
        f"{config}:12: sources[2].organization: unknown key; did you mean 'organisation'?",
        f"{config}:14: sources[3]: a feed source needs url",
    ]


def test_config_check_on_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere.toml", "config", "check")

    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / 'nowhere.toml'}: file not found\n"


def test_config_check_as_a_process_exits_0_on_a_valid_file(tmp_path: Path) -> None:
    write_config(tmp_path, "sqlite:///omvarld.db", VALID_BODY)

    process = run_process("config.toml", "config", "check", cwd=tmp_path)

    assert process.returncode == 0, process.stderr
    assert "config.toml: valid, 3 sources (3 enabled)" in process.stdout
    assert "X_BEARER_TOKEN" in process.stdout
    assert "Traceback" not in process.stderr


def test_config_check_as_a_process_exits_2_without_traceback_on_a_broken_file(
    tmp_path: Path,
) -> None:
    write_config(tmp_path, "sqlite:///omvarld.db", BROKEN_BODY)

    process = run_process("config.toml", "config", "check", cwd=tmp_path)

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    lines = process.stderr.splitlines()
    assert len(lines) == 4
    assert all(re.match(r"config\.toml:\d+: sources\[[1-3]\]", line) for line in lines)


def test_missing_config_as_a_process_exits_2_without_traceback(tmp_path: Path) -> None:
    process = run_process("absent.toml", "sources", "list", cwd=tmp_path)

    assert process.returncode == 2
    assert process.stderr == "absent.toml: file not found\n"


def test_invalid_toml_as_a_process_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database\nurl = "x"\n', encoding="utf-8")

    process = run_process("config.toml", "config", "check", cwd=tmp_path)

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert process.stderr.startswith("config.toml:1: invalid TOML: ")


HOSTILE_CONFIGS = {
    # Each of these was a traceback (or accepted, and a traceback later) before.
    "binary": (
        bytes(range(256)),
        "config.toml:2: not UTF-8 text (byte 0x80); save the file as UTF-8",
    ),
    "latin-1": (
        '[[sources]]\nplatform = "feed"\nurl = "https://www.varnamo.se/rss"\n'
        'organisation = "Värnamo kommun"\n'.encode("latin-1"),
        "config.toml:4: not UTF-8 text (byte 0xe4); save the file as UTF-8",
    ),
    "deeply nested": (
        b"groups = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "config.toml: invalid TOML: nested too deeply",
    ),
    "absurd interval": (
        b'[collect]\nconcurrency = 8\ninterval = "99999999999999d"\n',
        "config.toml:3: collect.interval: at most 365 days, got '99999999999999d'",
    ),
    "absurd source interval": (
        b'[[sources]]\nplatform = "feed"\nurl = "https://www.flen.se/rss"\n'
        b'organisation = "Flens kommun"\ninterval = 99999999999999999999\n',
        "config.toml:5: sources[1].interval: at most 365 days, got 99999999999999999999",
    ),
}


@pytest.mark.parametrize("name", HOSTILE_CONFIGS)
def test_hostile_config_file_is_one_line_and_exit_2_as_a_process(tmp_path: Path, name: str) -> None:
    content, line = HOSTILE_CONFIGS[name]
    (tmp_path / "config.toml").write_bytes(content)

    process = run_process("config.toml", "config", "check", cwd=tmp_path)

    assert (process.returncode, process.stdout, process.stderr) == (2, "", line + "\n")


def test_config_check_names_the_line_and_suggests_the_key_as_a_process(tmp_path: Path) -> None:
    sources = [feed_source(f"https://www.kommun{n}.se/rss", f"Kommun {n}") for n in range(1, 16)]
    misspelt = feed_source("https://www.kommun16.se/rss", "Kommun 16").replace(
        "organisation", "organization"
    )
    path = write_config(tmp_path, "sqlite:///omvarld.db", "".join(sources) + misspelt)
    numbered = list(enumerate(path.read_text(encoding="utf-8").splitlines(), 1))
    header = max(n for n, line in numbered if line == "[[sources]]")
    typo = next(n for n, line in numbered if line.startswith("organization"))

    process = run_process("config.toml", "config", "check", cwd=tmp_path)

    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        f"config.toml:{header}: sources[16].organisation: missing required key",
        f"config.toml:{typo}: sources[16].organization: unknown key; did you mean 'organisation'?",
    ]


# ------------------------------------------------------------------------------ sources list


def test_sources_list_shows_keys_and_organisations_and_inactive_on_request(
    tmp_path: Path, database_url: str
) -> None:
    body = (
        feed_source("https://www.flen.se/rss", "Flens kommun")
        + feed_source("https://www.gnesta.se/rss", "Gnesta kommun", key="gnesta")
        + textwrap.dedent(
            """\
            [[sources]]
            platform = "mastodon"
            handle = "@krisinformation@mastodon.nu"
            organisation = "MSB"
            """
        )
    )
    config = write_config(tmp_path, database_url, body)
    upgraded = run(config, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output

    listed = run(config, "sources", "list")

    assert listed.exit_code == 0, listed.output
    assert table_row(listed.stdout, "feed:www.flen.se/rss", "feed", "Flens kommun").search(
        listed.stdout
    )
    assert table_row(listed.stdout, "gnesta", "feed", "Gnesta kommun").search(listed.stdout)
    assert table_row(
        listed.stdout, "mastodon:krisinformation@mastodon.nu", "mastodon", "MSB"
    ).search(listed.stdout)

    write_config(
        tmp_path,
        database_url,
        feed_source("https://www.flen.se/rss", "Flens kommun")
        + feed_source("https://www.gnesta.se/rss", "Gnesta kommun", key="gnesta"),
    )
    after = run(config, "sources", "list")

    assert after.exit_code == 0, after.output
    assert "mastodon:krisinformation@mastodon.nu" not in after.stdout
    assert "MSB" not in after.stdout
    assert "gnesta" in after.stdout
    assert after.stderr == (
        "source mastodon:krisinformation@mastodon.nu is no longer configured: "
        "marked inactive, posts kept\n"
    )

    with_inactive = run(config, "sources", "list", "--inactive")

    assert with_inactive.exit_code == 0, with_inactive.output
    assert re.search(
        r"│\s*mastodon:krisinformation@mastodon\.nu\s*│\s*mastodon\s*│\s*MSB\s*│.*│\s*inactive\s*│",
        with_inactive.stdout,
    )
    assert table_row(with_inactive.stdout, "gnesta", "feed", "Gnesta kommun").search(
        with_inactive.stdout
    )
    assert with_inactive.stderr == ""


# ---------------------------------------------------------------- syncing only what changed


def set_organisation_by_hand(database_url: str, key: str, organisation: str) -> None:
    """An analyst's UPDATE on the sources table, as with sqlite3 or psql."""
    from monitor.db import make_engine
    from monitor.models import sources

    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sources.update().where(sources.c.key == key).values(organisation=organisation)
        )
    engine.dispose()


def test_an_unchanged_config_is_not_synced_again_until_its_sources_change(
    tmp_path: Path, database_url: str
) -> None:
    flen = feed_source("https://www.flen.se/rss", "Flens kommun", key="flen")
    config = write_config(tmp_path, database_url, flen)
    assert run(config, "db", "upgrade").exit_code == 0
    first = run(config, "sources", "list")
    assert table_row(first.stdout, "flen", "feed", "Flens kommun").search(first.stdout)
    set_organisation_by_hand(database_url, "flen", "Ändrad för hand")

    # The config is as the last sync wrote it: the table is not read again, so the edit stays.
    unchanged = run(config, "sources", "list")

    assert table_row(unchanged.stdout, "flen", "feed", "Ändrad för hand").search(unchanged.stdout)

    # Any change to what the config says of its sources syncs it all again.
    write_config(
        tmp_path, database_url, flen + feed_source("https://www.gnesta.se/rss", "Gnesta kommun")
    )
    changed = run(config, "sources", "list")

    assert table_row(changed.stdout, "flen", "feed", "Flens kommun").search(changed.stdout)
    assert "Gnesta kommun" in changed.stdout


def test_a_changed_included_file_is_synced_though_the_main_file_is_not(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config_with_include(tmp_path, database_url)
    included = tmp_path / "sources" / "kommuner.toml"
    included.parent.mkdir()
    included.write_text(feed_source("https://www.flen.se/rss", "Flens kommun", key="flen"))
    assert run(config, "db", "upgrade").exit_code == 0
    assert "Flens kommun" in run(config, "sources", "list").stdout

    included.write_text(feed_source("https://www.flen.se/rss", "Flens kommun (KS)", key="flen"))
    edited = run(config, "sources", "list")

    assert table_row(edited.stdout, "flen", "feed", "Flens kommun (KS)").search(edited.stdout)

    # A new file the include's pattern now matches is synced too.
    (tmp_path / "sources" / "regioner.toml").write_text(
        feed_source("https://www.regionsormland.se/rss", "Region Sörmland", key="region")
    )
    added = run(config, "sources", "list")

    assert table_row(added.stdout, "region", "feed", "Region Sörmland").search(added.stdout)
    assert table_row(added.stdout, "flen", "feed", "Flens kommun (KS)").search(added.stdout)

    included.unlink()
    removed = run(config, "sources", "list")

    assert "flen" not in removed.stdout
    assert removed.stderr == "source flen is no longer configured: marked inactive, posts kept\n"


def test_the_same_config_on_another_database_syncs_that_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OMVARLD_DATABASE_URL is read at every start, and what was synced is kept per database.
    config = write_config(
        tmp_path, sqlite_url(tmp_path), feed_source("https://www.flen.se/rss", "Flens kommun")
    )
    assert "feed:www.flen.se/rss" in run(config, "sources", "list").stdout
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("OMVARLD_DATABASE_URL", sqlite_url(other))

    listed = run(config, "sources", "list")

    assert table_row(listed.stdout, "feed:www.flen.se/rss", "feed", "Flens kommun").search(
        listed.stdout
    )
    assert (other / "omvarld.db").exists()


# ------------------------------------------------------------------------------- import-opml


def test_import_opml_writes_new_feeds_next_to_config_and_config_check_counts_them(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path, sqlite_url(tmp_path), feed_source("https://www.flen.se/rss", "Flens kommun")
    )
    opml = tmp_path / "downloads" / "kommuner.opml"
    opml.parent.mkdir()
    opml.write_text(OPML, encoding="utf-8")

    imported = run(config, "sources", "import-opml", str(opml), "--group", "kommuner")

    assert imported.exit_code == 0, imported.output
    target = tmp_path / "sources" / "kommuner.toml"
    assert (
        f"wrote 2 sources to {target} (1 already configured or listed twice were left out)"
        in imported.stdout
    )
    written = target.read_text(encoding="utf-8")
    assert "https://www.gnesta.se/rss" in written
    assert "https://www.vingaker.se/rss" in written
    assert "https://www.flen.se/rss" not in written

    write_config_with_include(
        tmp_path, sqlite_url(tmp_path), feed_source("https://www.flen.se/rss", "Flens kommun")
    )
    checked = run(config, "config", "check")

    assert checked.exit_code == 0, checked.output
    assert f"{config}: valid, 3 sources (3 enabled)" in checked.stdout
    assert table_row(checked.stdout, "kommuner", "2").search(checked.stdout)


def test_import_opml_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path))
    opml = tmp_path / "kommuner.opml"
    opml.write_text(OPML, encoding="utf-8")
    first = run(config, "sources", "import-opml", str(opml), "--group", "kommuner")
    assert first.exit_code == 0, first.output
    target = tmp_path / "sources" / "kommuner.toml"
    before = target.read_text(encoding="utf-8")

    second = run(config, "sources", "import-opml", str(opml), "--group", "andra")

    assert second.exit_code == 2
    assert second.stderr == f"error: {target} exists; choose another file with --out\n"
    assert target.read_text(encoding="utf-8") == before


def test_import_opml_with_a_feed_in_two_folders_writes_a_loadable_file(tmp_path: Path) -> None:
    # Readers let one feed sit in several folders; the include file must still load.
    config = write_config_with_include(tmp_path, sqlite_url(tmp_path))
    opml = tmp_path / "export.opml"
    opml.write_text(
        textwrap.dedent(
            """\
            <opml version="2.0"><body>
              <outline text="Kommuner">
                <outline text="Flens kommun" xmlUrl="https://www.flen.se/rss"/>
              </outline>
              <outline text="Sörmland">
                <outline text="Flens kommun" xmlUrl="https://www.flen.se/rss"/>
                <outline text="Gnesta kommun" xmlUrl="https://www.gnesta.se/rss"/>
              </outline>
            </body></opml>
            """
        ),
        encoding="utf-8",
    )
    imported = run(config, "sources", "import-opml", str(opml))
    assert imported.exit_code == 0, imported.output

    checked = run(config, "config", "check")

    assert checked.exit_code == 0, checked.stderr
    assert f"{config}: valid, 2 sources (2 enabled)" in checked.stdout


def test_import_opml_of_an_invalid_file_exits_2_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path))
    opml = tmp_path / "broken.opml"
    opml.write_text("<opml><body>", encoding="utf-8")

    result = run(config, "sources", "import-opml", str(opml))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {opml}: not valid OPML: ")
    assert not (tmp_path / "sources").exists()


def test_import_opml_as_a_process_with_a_relative_config_writes_beside_it(
    tmp_path: Path,
) -> None:
    write_config_with_include(tmp_path, "sqlite:///omvarld.db")
    (tmp_path / "kommuner.opml").write_text(OPML, encoding="utf-8")

    process = run_process(
        "config.toml",
        "sources",
        "import-opml",
        "kommuner.opml",
        "--group",
        "kommuner",
        cwd=tmp_path,
    )

    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert (tmp_path / "sources" / "kommuner.toml").is_file()

    again = run_process(
        "config.toml",
        "sources",
        "import-opml",
        "kommuner.opml",
        "--group",
        "kommuner",
        cwd=tmp_path,
    )

    assert again.returncode == 2
    assert "Traceback" not in again.stderr
    assert "exists" in again.stderr


# ------------------------------------------------------------------------------- export-opml


def test_export_opml_writes_the_configured_feeds_for_read_opml(tmp_path: Path) -> None:
    body = (
        feed_source("https://www.flen.se/rss", "Flens kommun")
        + 'groups = ["kommuner"]\n\n'
        + feed_source("https://www.gnesta.se/rss", "Gnesta kommun", name="Nyheter från Gnesta")
        + textwrap.dedent(
            """\
            [[sources]]
            platform = "mastodon"
            handle = "krisinformation@mastodon.nu"
            organisation = "MSB"
            """
        )
    )
    config = write_config(tmp_path, sqlite_url(tmp_path), body)
    out = tmp_path / "export.opml"

    result = run(config, "sources", "export-opml", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert f"wrote 2 feeds to {out}" in result.stdout
    assert sorted((f.url, f.title, f.category) for f in read_opml(str(out))) == [
        ("https://www.flen.se/rss", "Flens kommun", "kommuner"),
        ("https://www.gnesta.se/rss", "Nyheter från Gnesta", None),
    ]


def test_export_opml_without_out_writes_opml_to_stdout(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, sqlite_url(tmp_path), feed_source("https://www.flen.se/rss", "Flens kommun")
    )

    result = run(config, "sources", "export-opml")

    assert result.exit_code == 0, result.output
    saved = tmp_path / "stdout.opml"
    saved.write_text(result.stdout, encoding="utf-8")
    assert [f.url for f in read_opml(str(saved))] == ["https://www.flen.se/rss"]


# ----------------------------------------------------------------------------------- collect


def test_collect_with_unknown_platform_exits_2_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path))

    result = run(config, "collect", "--platform", "tiktok")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: --platform: unknown platform 'tiktok'; "
        "expected one of feed, x, youtube, mastodon, bluesky, facebook, flickr, vimeo, slideshare\n"
    )


def test_collect_with_unknown_platform_as_a_process_exits_2_without_traceback(
    tmp_path: Path,
) -> None:
    write_config(tmp_path, "sqlite:///omvarld.db")

    process = run_process("config.toml", "collect", "--platform", "tiktok", cwd=tmp_path)

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "'tiktok'" in process.stderr


def test_collect_with_unknown_source_exits_2_naming_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, sqlite_url(tmp_path), feed_source("http://127.0.0.1:9/rss", "Flens kommun")
    )

    result = run(config, "collect", "--source", "nope")

    assert result.exit_code == 2
    assert result.stderr == "error: --source: no active source with key 'nope'\n"


# ------------------------------------------------------------------- where digests go

RECIPIENTS = """
[[recipients]]
email = "kommunikation@katrineholm.se"

[[recipients]]
email = "info@flen.se"

[[recipients]]
email = "press@vingaker.se"
"""

SMTP = """
[smtp]
host = "smtp.example.se"
port = 587
security = "starttls"
username = "omvarld"
password_env = "OMVARLD_SMTP_PASSWORD"
"""


def test_config_check_says_digests_are_mailed_through_smtp_even_with_an_outbox_set(
    tmp_path: Path,
) -> None:
    body = '[digest]\noutbox = "outbox"\n' + SMTP + RECIPIENTS
    config = write_config(tmp_path, sqlite_url(tmp_path), body)

    result = CliRunner().invoke(
        app,
        ["--config", str(config), "config", "check"],
        env={**WIDE, "OMVARLD_SMTP_PASSWORD": "hemligt"},
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "Digests: mailed through smtp.example.se:587 (starttls) every Monday 07:00"
        " Europe/Stockholm to 3 recipients"
    )
    assert result.stderr == ""


def test_config_check_warns_when_the_smtp_password_is_missing(tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path), SMTP + RECIPIENTS)

    result = CliRunner().invoke(
        app, ["--config", str(config), "config", "check"], env={**WIDE, "OMVARLD_SMTP_PASSWORD": ""}
    )

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: no digest reaches the 3 recipients: [smtp] password_env: the environment"
        " variable OMVARLD_SMTP_PASSWORD is not set\n"
    )


def test_config_check_says_digests_are_only_written_to_the_outbox_without_smtp(
    tmp_path: Path,
) -> None:
    body = '[[recipients]]\nemail = "nyheter@gnesta.se"\nschedule = "tue 08:30"\n'
    write_config(tmp_path, "sqlite:///omvarld.db", RECIPIENTS + body)

    process = run_process("config.toml", "config", "check", cwd=tmp_path)

    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines()[-1] == (
        "Digests: written to outbox/ every Monday 07:00 and Tuesday 08:30 Europe/Stockholm"
        " for 4 recipients — no [smtp]"
    )
    assert process.stderr == (
        "warning: no digest reaches the 4 recipients: without [smtp] they are only written to"
        " outbox/; add [smtp] to mail them\n"
    )


def test_config_check_says_no_digests_go_out_without_recipients(tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_url(tmp_path), SMTP)

    result = run(config, "config", "check")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Digests: none — no [[recipients]]"
    assert result.stderr == ""
