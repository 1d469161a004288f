"""No collector lets a credential out: not on screen, in the log, the database or `status`.

Each platform's API is played by a loopback server that misbehaves on every request, in the
two ways that leaked YouTube's key: a malformed header (aiohttp's error names the URL, `key=`
and all) and an error answer that echoes the request's URL and Authorization header.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectors.base import ConfiguredSource
from monitor.collect import make_collector_settings
from monitor.config import load_config
from monitor.db import make_engine, upgrade
from monitor.models import collection_runs, sources
from tests.conftest import write_config
from tests.feedserver import FeedServer, Request, Route
from tests.platforms import json_route

# Fake credentials, one per platform; each is looked for in everything a user can see.
SECRETS = {
    "youtube": ("YOUTUBE_API_KEY", "yt-key-5ecret-aa11bb22"),
    "flickr": ("FLICKR_API_KEY", "flickr-key-5ecret-cc33dd44"),
    "x": ("X_BEARER_TOKEN", "x-bearer-5ecret-ee55ff66"),
    "facebook": ("FACEBOOK_ACCESS_TOKEN", "fb-token-5ecret-gg77hh88"),
    "mastodon": ("MASTODON_ACCESS_TOKEN", "masto-token-5ecret-ii99jj00"),
    "bluesky": ("BLUESKY_ACCESS_TOKEN", "bsky-token-5ecret-kk11ll22"),
}


def echo(request: Request) -> str:
    """What a careless API says back: the request's URL and credentials."""
    return f"cannot serve {request.path} for {request.headers.get('authorization', 'anyone')}"


def error_answer(platform: str, message: str) -> Route:
    """An error in the platform's own format, so that its message reaches the collector's own
    error mapping."""
    status, document = {
        "youtube": (
            400,
            {"error": {"code": 400, "message": message, "errors": [{"reason": "badRequest"}]}},
        ),
        "flickr": (200, {"stat": "fail", "code": 99, "message": message}),
        "x": (403, {"title": "Forbidden", "detail": message}),
        "facebook": (400, {"error": {"message": message, "type": "OAuthException", "code": 100}}),
        "mastodon": (422, {"error": message}),
        "bluesky": (400, {"error": "InvalidRequest", "message": message}),
    }[platform]
    return json_route(document, status)


def malformed_header(request: Request) -> Route:
    # A header name with a space: aiohttp refuses the answer with the full URL in its error.
    return Route(body=b"{}", content_type="application/json", headers={"Bad Name": "x"})


def platform_config(platform: str, server: FeedServer) -> str:
    base = server.url("")
    env = SECRETS[platform][0]
    settings = {
        "youtube": f'[platforms.youtube]\napi_url = "{base}/youtube/v3"\n',
        "flickr": f'[platforms.flickr]\napi_url = "{base}/services/rest"\n',
        "x": f'[platforms.x]\napi_url = "{base}"\n',
        "facebook": f'[platforms.facebook]\napi_url = "{base}/v21.0"\n',
        "mastodon": f'[platforms.mastodon]\napi_url = "{base}"\naccess_token_env = "{env}"\n',
        "bluesky": f'[platforms.bluesky]\napi_url = "{base}"\naccess_token_env = "{env}"\n',
    }[platform]
    handle = {
        "youtube": "@skatteverket",
        "flickr": "trafikverket",
        "x": "@polisen",
        "facebook": "flenskommun",
        "mastodon": "@krisinformation@mastodon.nu",
        "bluesky": "@polisen.bsky.social",
    }[platform]
    source = (
        f'[[sources]]\nplatform = "{platform}"\nhandle = "{handle}"\n'
        f'organisation = "Testkommun"\nkey = "leaky"\n'
    )
    if platform in ("mastodon", "bluesky"):
        source += f'api_url = "{base}"\n'
    # X's client (urllib3) waits for the body a malformed header hid: do not wait 30 s.
    return "[collect]\nread_timeout = 2\n\n" + settings + "\n" + source


def omvarld(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("misbehaviour", ["malformed-header", "echo"])
@pytest.mark.parametrize("platform", list(SECRETS))
def test_no_credential_reaches_output_log_database_or_status(
    tmp_path: Path, database_url: str, feed_server: FeedServer, platform: str, misbehaviour: str
) -> None:
    env_name, secret = SECRETS[platform]
    feed_server.fallback = (
        malformed_header
        if misbehaviour == "malformed-header"
        else lambda request: error_answer(platform, echo(request))
    )
    config = write_config(tmp_path, database_url, platform_config(platform, feed_server))
    env = {**os.environ, "COLUMNS": "200", env_name: secret}

    engine = make_engine(database_url)
    upgrade(engine)
    collect = omvarld(config, env, "-v", "collect", "--all")
    status = omvarld(config, env, "status", "--json")

    assert feed_server.requests, "the collector never called the API"
    sent = [r for r in feed_server.requests if secret in r.path + json.dumps(r.headers)]
    assert sent, "the credential was never sent, so this test proves nothing"
    assert collect.returncode == 1, collect.stdout + collect.stderr
    assert "leaky: failed: " in collect.stdout
    assert "Traceback" not in collect.stdout + collect.stderr
    try:
        with engine.connect() as connection:
            stored = [
                json.dumps([list(row) for row in connection.execute(sa.select(table))], default=str)
                for table in (collection_runs, sources)
            ]
            errors = connection.execute(sa.select(collection_runs.c.error)).scalars().all()
    finally:
        engine.dispose()
    assert errors and all(errors)
    for seen in (collect.stdout, collect.stderr, status.stdout, status.stderr, *stored):
        assert secret not in seen


# A server's error text is as untrusted as a post: a terminal escape in it must not reach the
# screen through `collect` or `status`, nor be stored.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"
CONTROL = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} - {"\t", "\n"}


@pytest.mark.parametrize("platform", list(SECRETS))
def test_escape_sequences_in_an_api_error_reach_neither_screen_nor_database(
    tmp_path: Path, database_url: str, feed_server: FeedServer, platform: str
) -> None:
    env_name, secret = SECRETS[platform]
    feed_server.fallback = lambda request: error_answer(platform, f"{ESCAPES}bad request")
    config = write_config(tmp_path, database_url, platform_config(platform, feed_server))
    env = {**os.environ, "COLUMNS": "200", env_name: secret}

    engine = make_engine(database_url)
    upgrade(engine)
    collect = omvarld(config, env, "collect", "--all")
    status = omvarld(config, env, "status")

    assert collect.returncode == 1, collect.stdout + collect.stderr
    assert "leaky: failed: " in collect.stdout
    try:
        with engine.connect() as connection:
            errors = connection.execute(sa.select(collection_runs.c.error)).scalars().all()
            last = connection.execute(sa.select(sources.c.last_error)).scalars().all()
    finally:
        engine.dispose()
    assert errors and all(errors)
    for seen in (collect.stdout, status.stdout, *errors, *last):
        assert not CONTROL & set(seen), repr(seen)


def test_a_collector_is_handed_the_credential_the_config_names_and_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, token = "MY_X_TOKEN", SECRETS["x"][1]
    monkeypatch.setenv(env, token)
    body = (
        f'[platforms.x]\nbearer_token_env = "{env}"\nmonthly_read_budget = 5000\n\n'
        '[[sources]]\nplatform = "x"\nhandle = "@polisen"\norganisation = "Polisen"\n\n'
        '[[sources]]\nplatform = "feed"\nurl = "https://polisen.se/rss"\norganisation = "Polisen"\n'
    )
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", body))

    settings = make_collector_settings(config, "x")

    assert (settings.secret, settings.secret_env) == (token, env)
    assert settings.api_url == "https://api.twitter.com" and settings.monthly_read_budget == 5000
    assert settings.sources == (ConfiguredSource("@polisen", None, None, "Polisen", True),)
    # A collector or a log line that prints its settings shows no credential.
    assert token not in repr(settings) and token not in str(settings)
    assert make_collector_settings(config, "feed").secret is None
