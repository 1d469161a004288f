"""load_config: what a valid file gives, and the exact problem lines a broken one produces."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.config import (
    PLATFORMS,
    Config,
    ConfigError,
    load_config,
    missing_secret,
    secret,
)

VALID_PLATFORMS = ", ".join(PLATFORMS)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own shell must not decide what these tests see.
    for name in ("OMVARLD_DATABASE_URL", "X_BEARER_TOKEN", "FACEBOOK_ACCESS_TOKEN", "MY_X_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def problem_lines(path: Path) -> list[str]:
    """The lines a user sees for a config that does not load."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(problem) for problem in caught.value.problems]


MINIMAL = """\
    [[sources]]
    platform = "feed"
    url = "https://www.example.se/rss"
    organisation = "Exempels kommun"
    """


# ------------------------------------------------------------------------------ valid files


def test_minimal_config_loads_with_default_collect_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.toml", MINIMAL))

    assert isinstance(config, Config)
    assert config.collect.concurrency == 64
    assert config.collect.per_host == 2
    assert config.collect.backfill_days == 30
    assert config.collect.backfill_posts == 200
    assert config.collect.interval == 3600
    assert [s.organisation for s in config.sources] == ["Exempels kommun"]
    assert config.sources[0].enabled is True
    assert config.sources[0].groups == ()


def test_empty_config_file_is_valid_and_has_no_sources(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))

    assert config.sources == ()


@pytest.mark.parametrize(
    ("written", "seconds"),
    [('"15m"', 900), ('"2h"', 7200), ('"1d"', 86400), ("900", 900), ('"90"', 90), ('"45s"', 45)],
)
def test_durations_parse_to_seconds_for_sources_and_collect(
    tmp_path: Path, written: str, seconds: int
) -> None:
    path = write(
        tmp_path / "config.toml",
        f"""\
        [collect]
        interval = {written}

        [[sources]]
        platform = "feed"
        url = "https://www.example.se/rss"
        organisation = "Exempels kommun"
        interval = {written}
        """,
    )

    config = load_config(path)

    assert config.collect.interval == seconds
    assert config.sources[0].interval == seconds


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        (
            '"15 minutes"',
            'expected a duration like 900, "15m", "2h" or "1d", got \'15 minutes\'',
        ),
        ("0", "a duration must be positive"),
        ('"0m"', "a duration must be positive"),
        # Accepted once, then an OverflowError at the first collection.
        ('"99999999999999d"', "at most 365 days, got '99999999999999d'"),
        ("99999999999999999999", "at most 365 days, got 99999999999999999999"),
        ('"366d"', "at most 365 days, got '366d'"),
    ],
)
def test_bad_duration_is_a_problem_on_its_key(tmp_path: Path, written: str, reason: str) -> None:
    path = write(tmp_path / "config.toml", f"[collect]\ninterval = {written}\n")

    assert problem_lines(path) == [f"{path}:2: collect.interval: {reason}"]


def test_a_year_is_the_longest_duration_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[collect]\nmax_backoff = "365d"\n' + MINIMAL)

    assert load_config(path).collect.max_backoff == 365 * 86400


def test_absurd_duration_of_a_source_is_a_problem_on_its_key(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", MINIMAL + 'interval = "99999999999999d"\n')

    assert problem_lines(path) == [
        f"{path}:5: sources[1].interval: at most 365 days, got '99999999999999d'"
    ]


@pytest.mark.parametrize("setting", ["[collect]\nread_timeout", "[smtp]\ntimeout"])
def test_infinite_timeout_is_a_problem_on_its_key(tmp_path: Path, setting: str) -> None:
    path = write(tmp_path / "config.toml", f"{setting} = inf\n")
    key = setting.replace("]\n", ".").lstrip("[")

    assert problem_lines(path) == [f"{path}:2: {key}: Input should be less than or equal to 3600"]


@pytest.mark.parametrize("setting", ["[collect]\nbackfill_days", "[retention]\nposts_after_days"])
def test_absurd_day_count_is_a_problem_on_its_key(tmp_path: Path, setting: str) -> None:
    path = write(tmp_path / "config.toml", f"{setting} = 99999999999\n")
    key = setting.replace("]\n", ".").lstrip("[")

    assert problem_lines(path) == [f"{path}:2: {key}: Input should be less than or equal to 36500"]


def test_keys_are_derived_from_address_unless_given(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.example.se/rss/"
        organisation = "Exempels kommun"

        [[sources]]
        platform = "mastodon"
        handle = "@Krisinformation@mastodon.nu"
        organisation = "MSB"

        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/nyheter.xml"
        organisation = "Flens kommun"
        key = "flen-nyheter"
        """,
    )

    config = load_config(path)

    assert [s.stable_key for s in config.sources] == [
        "feed:www.example.se/rss",
        "mastodon:krisinformation@mastodon.nu",
        "flen-nyheter",
    ]


# --------------------------------------------------------------------------------- includes


def test_include_glob_merges_sources_from_several_files(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + MINIMAL)
    write(
        tmp_path / "sources" / "kommuner.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"

        [[sources]]
        platform = "feed"
        url = "https://www.vingaker.se/rss"
        organisation = "Vingåkers kommun"
        """,
    )
    write(
        tmp_path / "sources" / "myndigheter.toml",
        """\
        [[sources]]
        platform = "mastodon"
        handle = "krisinformation@mastodon.nu"
        organisation = "MSB"
        """,
    )

    config = load_config(config_path)

    assert sorted(s.organisation for s in config.sources) == [
        "Exempels kommun",
        "Flens kommun",
        "MSB",
        "Vingåkers kommun",
    ]


def test_include_glob_matching_nothing_is_not_a_problem(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + MINIMAL)

    assert len(load_config(config_path).sources) == 1


def test_missing_include_without_glob_names_config_file_and_include(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", 'include = ["sources/extra.toml"]\n' + MINIMAL)

    assert problem_lines(path) == [f"{path}:1: include: 'sources/extra.toml': file not found"]


def test_include_with_invalid_toml_names_the_included_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + MINIMAL)
    broken = write(tmp_path / "sources" / "broken.toml", "[[sources]\nplatform = feed\n")

    lines = problem_lines(path)

    assert len(lines) == 1
    assert lines[0].startswith(f"{broken}:1: invalid TOML: ")


def test_include_holding_more_than_sources_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + MINIMAL)
    extra = write(
        tmp_path / "sources" / "extra.toml",
        """\
        [database]
        url = "sqlite:///other.db"
        """,
    )

    assert problem_lines(path) == [f"{extra}:1: database: an included file holds only [[sources]]"]


def test_include_with_single_bracket_sources_table_gets_the_array_of_tables_hint(
    tmp_path: Path,
) -> None:
    # `[sources]` instead of `[[sources]]` is the commonest slip; the main file already
    # answers it with one clear line, and an included file should too.
    path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n')
    extra = write(
        tmp_path / "sources" / "extra.toml",
        """\
        [sources]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{extra}:1: sources: expected an array of tables: write [[sources]]"
    ]


def test_single_bracket_sources_table_in_main_file_gets_the_array_of_tables_hint(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [sources]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:1: sources: expected an array of tables: write [[sources]]"
    ]


def test_problem_in_included_file_names_that_file_and_its_own_index(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + MINIMAL)
    included = write(
        tmp_path / "sources" / "kommuner.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"

        [[sources]]
        platform = "tiktok"
        handle = "flenskommun"
        organisation = "Flens kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{included}:7: sources[2].platform: unknown platform 'tiktok'; "
        f"expected one of {VALID_PLATFORMS}"
    ]


# --------------------------------------------------------------------------------- problems


def test_unknown_platform_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [[sources]]
        platform = "myspace"
        handle = "exempel"
        organisation = "Exempels kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:2: sources[1].platform: unknown platform 'myspace'; "
        "expected one of feed, x, youtube, mastodon, bluesky, facebook, flickr"
    ]


def test_feed_without_url_is_a_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [[sources]]
        platform = "feed"
        organisation = "Exempels kommun"
        """,
    )

    assert problem_lines(path) == [f"{path}:1: sources[1]: a feed source needs url"]


@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky", "youtube"])
def test_social_source_without_handle_is_a_problem(tmp_path: Path, platform: str) -> None:
    path = write(
        tmp_path / "config.toml",
        f"""\
        [[sources]]
        platform = "{platform}"
        organisation = "Exempels kommun"
        """,
    )

    assert problem_lines(path) == [f"{path}:1: sources[1]: a {platform} source needs handle"]


@pytest.mark.parametrize("url", ["ftp://www.example.se/rss", "www.example.se/rss", "https://"])
def test_url_that_is_not_http_is_a_problem(tmp_path: Path, url: str) -> None:
    path = write(
        tmp_path / "config.toml",
        f"""\
        [[sources]]
        platform = "feed"
        url = "{url}"
        organisation = "Exempels kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:3: sources[1].url: expected an http(s) URL, got {url!r}"
    ]


def test_misspelt_key_is_reported_with_a_suggestion_alongside_the_missing_one(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.example.se/rss"
        organization = "Exempels kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:1: sources[1].organisation: missing required key",
        f"{path}:4: sources[1].organization: unknown key; did you mean 'organisation'?",
    ]


def test_unknown_key_in_a_settings_table_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[collect]\nconcurency = 8\n" + MINIMAL)

    assert problem_lines(path) == [
        f"{path}:2: collect.concurency: unknown key; did you mean 'concurrency'?"
    ]


def test_unknown_platform_table_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[platforms.tiktok]\napi_url = "https://t.example"\n')

    assert problem_lines(path) == [
        f"{path}:1: platforms.tiktok: unknown platform 'tiktok'; expected one of {VALID_PLATFORMS}"
    ]


def test_settings_given_as_a_value_instead_of_a_table_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "collect = 5\n")

    assert problem_lines(path) == [f"{path}:1: collect: expected a table"]


def test_duplicate_key_names_both_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"
        key = "flen"

        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/nyheter.xml"
        organisation = "Flens kommun"
        key = "flen"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:7: sources[2]: duplicate source key 'flen' (first in {path} sources[1])"
    ]


def test_same_address_under_two_keys_names_both_locations(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + MINIMAL)
    included = write(
        tmp_path / "sources" / "kommuner.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"

        [[sources]]
        platform = "feed"
        url = "http://WWW.EXAMPLE.SE/rss/"
        organisation = "Exempels kommun"
        key = "exempel"
        """,
    )

    assert problem_lines(path) == [
        f"{included}:6: sources[2]: duplicate source address 'feed:www.example.se/rss' "
        f"(first in {path} sources[1])"
    ]


def test_undeclared_group_is_a_problem_once_groups_are_declared(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [groups.kommuner]
        name = "Kommuner i Sörmland"

        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"
        groups = ["kommuner"]

        [[sources]]
        platform = "feed"
        url = "https://www.vingaker.se/rss"
        organisation = "Vingåkers kommun"
        groups = ["kommunr"]
        """,
    )

    assert problem_lines(path) == [f"{path}:14: sources[2].groups: undeclared group 'kommunr'"]


def test_groups_need_no_declaration_when_none_are_declared(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"
        groups = ["kommuner", "sörmland"]
        """,
    )

    assert load_config(path).sources[0].groups == ("kommuner", "sörmland")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[[sources]]\nplatform = "feed\n')

    lines = problem_lines(path)

    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:2: invalid TOML: ")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    assert problem_lines(path) == [f"{path}: file not found"]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [collect]
        concurrency = 0

        [[sources]]
        platform = "tiktok"
        handle = "exempel"
        organisation = "Exempels kommun"

        [[sources]]
        platform = "feed"
        organisation = "Flens kommun"

        [[sources]]
        platform = "feed"
        url = "gopher://www.vingaker.se/rss"
        organisation = "Vingåkers kommun"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:2: collect.concurrency: Input should be greater than or equal to 1",
        f"{path}:5: sources[1].platform: unknown platform 'tiktok'; "
        f"expected one of {VALID_PLATFORMS}",
        f"{path}:9: sources[2]: a feed source needs url",
        f"{path}:15: sources[3].url: expected an http(s) URL, got 'gopher://www.vingaker.se/rss'",
    ]


def test_a_broken_source_has_every_problem_named_in_one_round(tmp_path: Path) -> None:
    # Before, the missing url and the undeclared group came only after the typo was fixed, and
    # the group check waited for [collect] to be valid.
    path = write(
        tmp_path / "config.toml",
        """\
        [collect]
        concurrency = 0

        [groups.kommuner]

        [[sources]]
        platform = "feed"
        organization = "Flens kommun"
        groups = ["kommunr"]
        """,
    )

    assert problem_lines(path) == [
        f"{path}:2: collect.concurrency: Input should be greater than or equal to 1",
        f"{path}:6: sources[1].organisation: missing required key",
        f"{path}:6: sources[1]: a feed source needs url",
        f"{path}:8: sources[1].organization: unknown key; did you mean 'organisation'?",
        f"{path}:9: sources[1].groups: undeclared group 'kommunr'",
    ]


def test_misspelt_keys_of_every_table_get_a_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        includes = ["sources/*.toml"]

        [digest]
        form = "Omvärld <omvarld@katrineholm.se>"

        [platforms.x]
        bearer_token = "X_BEARER_TOKEN"

        [[recipients]]
        email = "anna@katrineholm.se"
        organization = "Katrineholms kommun"

        [smtp]
        hostname = "smtp.katrineholm.se"
        """,
    )

    assert problem_lines(path) == [
        f"{path}:1: includes: unknown key; did you mean 'include'?",
        f"{path}:4: digest.form: unknown key; did you mean 'from'?",
        f"{path}:7: platforms.x.bearer_token: unknown key; did you mean 'bearer_token_env'?",
        f"{path}:11: recipients[1].organization: unknown key; did you mean 'organisation'?",
        f"{path}:14: smtp.hostname: unknown key; did you mean 'host'?",
    ]


def test_line_numbers_are_not_misled_by_multiline_values(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        '''\
        [[sources]]
        platform = "feed"
        url = "https://www.flen.se/rss"
        organisation = "Flens kommun"
        name = """
        [[sources]]
        platform = "feed"
        """
        groups = [
          "kommuner",
          ["sörmland"]
        ]

        [[sources]]
        platform = "feed"
        url = "https://www.gnesta.se/rss"
        organisation = "Gnesta kommun"
        enabled = "ja"
        ''',
    )

    assert problem_lines(path) == [
        f"{path}:9: sources[1].groups[2]: Input should be a valid string",
        f"{path}:18: sources[2].enabled: Input should be a valid boolean, "
        "unable to interpret input",
    ]


def test_non_utf8_file_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[database]\nurl = "sqlite:///omvarld.db"\n# V\xe4rnamo kommun\n')

    assert problem_lines(path) == [f"{path}:3: not UTF-8 text (byte 0xe4); save the file as UTF-8"]


def test_binary_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    assert problem_lines(path) == [f"{path}:1: not UTF-8 text (byte 0x89); save the file as UTF-8"]


def test_deeply_nested_toml_is_one_problem(tmp_path: Path) -> None:
    # tomllib recursed into a RecursionError traceback.
    path = write(tmp_path / "config.toml", "groups = " + "[" * 5000 + "]" * 5000 + "\n")

    assert problem_lines(path) == [f"{path}: invalid TOML: nested too deeply"]


# --------------------------------------------------------------------------------- database


def test_environment_database_url_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "config.toml", '[database]\nurl = "sqlite:////srv/omvarld.db"\n' + MINIMAL
    )
    config = load_config(path)
    assert config.database_url == "sqlite:////srv/omvarld.db"

    monkeypatch.setenv("OMVARLD_DATABASE_URL", "postgresql+psycopg://omvarld@db.example.se/omvarld")

    assert config.database_url == "postgresql+psycopg://omvarld@db.example.se/omvarld"


def test_relative_sqlite_path_is_resolved_against_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "etc" / "config.toml", '[database]\nurl = "sqlite:///data/omvarld.db"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(path)

    assert (
        config.database_url == f"sqlite:///{(tmp_path / 'etc' / 'data' / 'omvarld.db').resolve()}"
    )


def test_default_database_is_a_file_next_to_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))

    assert config.database_url == f"sqlite:///{(tmp_path / 'omvarld.db').resolve()}"


def test_in_memory_sqlite_is_left_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[database]\nurl = "sqlite:///:memory:"\n')

    assert load_config(path).database_url == "sqlite:///:memory:"


# ---------------------------------------------------------------------------------- secrets


def test_x_without_token_reports_the_environment_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))

    assert missing_secret(config, "x") == "X_BEARER_TOKEN"
    assert secret(config, "x", "bearer_token_env") is None


def test_x_with_token_set_needs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))
    monkeypatch.setenv("X_BEARER_TOKEN", "AAAA-token")

    assert missing_secret(config, "x") is None
    assert secret(config, "x", "bearer_token_env") == "AAAA-token"


def test_empty_token_counts_as_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))
    monkeypatch.setenv("X_BEARER_TOKEN", "")

    assert missing_secret(config, "x") == "X_BEARER_TOKEN"


def test_custom_token_variable_name_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        write(tmp_path / "config.toml", '[platforms.x]\nbearer_token_env = "MY_X_TOKEN"\n')
    )
    monkeypatch.setenv("X_BEARER_TOKEN", "the-default-name-is-not-read")

    assert missing_secret(config, "x") == "MY_X_TOKEN"

    monkeypatch.setenv("MY_X_TOKEN", "custom-token")

    assert missing_secret(config, "x") is None
    assert secret(config, "x", "bearer_token_env") == "custom-token"


def test_facebook_without_token_reports_its_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))

    assert missing_secret(config, "facebook") == "FACEBOOK_ACCESS_TOKEN"


@pytest.mark.parametrize("platform", ["feed", "mastodon", "bluesky", "youtube", "flickr"])
def test_platforms_without_required_credentials_need_no_secret(
    tmp_path: Path, platform: str
) -> None:
    config = load_config(write(tmp_path / "config.toml", ""))

    assert missing_secret(config, platform) is None


@pytest.mark.parametrize("value", ["0", "100001", '"many"'])
def test_max_entries_outside_its_range_is_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "config.toml", f"[collect]\nmax_entries = {value}\n" + MINIMAL)
    assert any("collect.max_entries" in line for line in problem_lines(path))


def test_max_entries_defaults_to_500_and_can_be_set(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "a.toml", MINIMAL)).collect.max_entries == 500
    path = write(tmp_path / "b.toml", "[collect]\nmax_entries = 2000\n" + MINIMAL)
    assert load_config(path).collect.max_entries == 2000


def test_reading_alert_rules_checks_their_queries_without_loading_the_database_layer(
    tmp_path: Path,
) -> None:
    """`omvarld collect` starts its parse pool right after reading the config, while it imports
    SQLAlchemy: a config whose rules' queries pulled SQLAlchemy in first made a churn pass with
    50 rules 0.2 s slower (issue 14)."""
    config = tmp_path / "omvarld.toml"
    config.write_text(
        '[[alerts]]\nname = "Kris"\nquery = "översvämning OR snöröj*"\n'
        'notify = ["json://127.0.0.1:9/h"]\n',
        encoding="utf-8",
    )
    broken = tmp_path / "broken.toml"
    broken.write_text(config.read_text(encoding="utf-8").replace("OR snöröj*", "OR"), "utf-8")
    script = (
        "import sys\n"
        "from monitor.config import ConfigError, load_config\n"
        f"print(len(load_config({str(config)!r}).alerts))\n"
        "try:\n"
        f"    load_config({str(broken)!r})\n"
        "except ConfigError as error:\n"
        "    print('refused:', error)\n"
        "print('loaded:', [m for m in ('sqlalchemy', 'monitor.search') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("refused: ") and "OR needs a word or phrase on each side" in lines[1]
    assert lines[2] == "loaded: []"
