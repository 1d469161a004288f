"""`omvarld web` as a real server process over the digest tests' database, on both databases:
what it refuses (untrusted proxies, tampered links, forms without their CSRF token, slow
queries), what it answers (the API, downloads, the archive as mailed), and the headers every
response carries."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import digest_opt_outs, posts
from monitor.tokens import sign
from tests import webserver
from tests.digestdata import CONFIG, fill, setup_config
from tests.smtpserver import Server, free_port

SECRET = "a-test-secret-of-enough-length-0123456789"
ENV = {"OMVARLD_WEB_SECRET": SECRET}
OMVARLD = (sys.executable, "-m", "monitor")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


@contextmanager
def serve(config: Path, env: dict[str, str]) -> Iterator[str]:
    """`omvarld web` over `config` (tests/webserver.py) until the block ends; its base URL."""
    log = config.parent / f"web-{time.monotonic_ns()}.log"
    with webserver.serve(config, {**os.environ, **env}, free_port(), log) as (_, base_url):
        yield base_url


def fetch(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


@pytest.fixture
def site(tmp_path: Path, engine: Engine) -> tuple[Path, Engine]:
    """The digest tests' database and config, with the web app's settings."""
    config = setup_config(tmp_path, engine, CONFIG + '\n[web]\nsecret_env = "OMVARLD_WEB_SECRET"\n')
    fill(engine)
    return config.path, engine


def with_web(config: Path, settings: str) -> Path:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[web]\n", "[web]\n" + settings + "\n"), encoding="utf-8")
    return config


def assert_secure_headers(answer: Answer) -> None:
    policy = answer.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert answer.headers.get("x-content-type-options") == "nosniff"
    assert answer.headers.get("referrer-policy")


def test_pages_api_and_errors_answer_with_the_security_headers(site: tuple[Path, Engine]) -> None:
    config, _ = site
    with serve(config, ENV) as base:
        for path in ("/", "/search?q=kommun", "/sources", "/digests", "/accessibility"):
            answer = fetch(base + path)
            assert answer.status == 200, path
            assert_secure_headers(answer)
            assert '<html lang="sv">' in answer.text
        english = fetch(base + "/sources", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert '<html lang="en">' in english.text and "Sources" in english.text
        for path, status in (("/posts/999999", 404), ("/nowhere", 404), ("/?week=W99", 400)):
            answer = fetch(base + path)
            assert answer.status == status, path
            assert_secure_headers(answer)
            assert "Traceback" not in answer.text
        assert_secure_headers(fetch(base + "/static/omvarld.css"))
        assert_secure_headers(fetch(base + "/api/sources"))


def test_proxy_auth_believes_the_user_header_only_from_a_trusted_proxy(
    site: tuple[Path, Engine],
) -> None:
    config, _ = site
    with_web(config, 'auth = "proxy"\ntrusted_proxies = ["127.0.0.1"]')
    token = sign(SECRET.encode(), "anna@katrineholm.se")
    with serve(config, ENV) as base:
        signed_in = {"X-Forwarded-User": "anna@katrineholm.se"}
        assert fetch(base + "/sources", headers=signed_in).status == 200
        assert fetch(base + "/api/sources", headers=signed_in).status == 200
        refused = fetch(base + "/sources")
        assert refused.status == 403 and "Traceback" not in refused.text
        assert fetch(base + "/api/posts").status == 403
        assert fetch(base + "/sources", headers={"X-Forwarded-User": " "}).status == 403
        # The proxy's health checks and the recipients' signed links need no sign-in.
        assert fetch(base + "/healthz").status == 200
        assert fetch(f"{base}/r/{token}").status == 200

    # From an address that is not a trusted proxy, the header proves nothing.
    with_web(config, 'trusted_proxies = ["10.20.30.40"]')
    text = config.read_text(encoding="utf-8").replace('trusted_proxies = ["127.0.0.1"]\n', "")
    config.write_text(text, encoding="utf-8")
    with serve(config, ENV) as base:
        forged = fetch(base + "/sources", headers={"X-Forwarded-User": "admin"})
        assert forged.status == 403


def test_a_tampered_or_foreign_link_gets_a_clear_400_page(site: tuple[Path, Engine]) -> None:
    config, _ = site
    token = sign(SECRET.encode(), "anna@katrineholm.se")
    payload, signature = token.split(".")
    other = sign(b"another-installations-secret-000", "anna@katrineholm.se")
    with serve(config, ENV) as base:
        for bad in (f"{payload}.{signature[::-1]}", other, "garbage", payload):
            for path in (f"/r/{bad}", f"/r/{bad}/unsubscribe", f"/r/{bad}/digests/1"):
                answer = fetch(base + path)
                assert answer.status == 400, path
                assert "Länken är ogiltig" in answer.text
                assert "Traceback" not in answer.text and "BadToken" not in answer.text
            posted = fetch(
                f"{base}/r/{bad}/unsubscribe", method="POST", data=b"List-Unsubscribe=One-Click"
            )
            assert posted.status == 400


def test_signed_links_without_a_secret_are_refused_plainly(site: tuple[Path, Engine]) -> None:
    config, _ = site
    token = sign(SECRET.encode(), "anna@katrineholm.se")
    with serve(config, {"OMVARLD_WEB_SECRET": ""}) as base:
        answer = fetch(f"{base}/r/{token}")
        assert answer.status == 404
        assert "secret_env" in answer.text


def opted_out(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(digest_opt_outs)).all()
    return {row.recipient: row.via for row in rows}


def test_the_recipient_page_form_needs_its_csrf_token(site: tuple[Path, Engine]) -> None:
    config, engine = site
    token = sign(SECRET.encode(), "anna@katrineholm.se")
    with serve(config, ENV) as base:
        page = fetch(f"{base}/r/{token}")
        assert page.status == 200
        assert "anna@katrineholm.se" in page.text and "Katrineholms kommun" in page.text
        cookie = page.headers["set-cookie"].split(";")[0]  # omvarld_csrf=…
        field = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert field and cookie == f"omvarld_csrf={field.group(1)}"

        form = f"csrf={field.group(1)}&action=unsubscribe".encode()
        form_type = {"Content-Type": "application/x-www-form-urlencoded"}
        without_cookie = fetch(f"{base}/r/{token}", method="POST", data=form, headers=form_type)
        assert without_cookie.status == 403
        wrong = fetch(
            f"{base}/r/{token}",
            method="POST",
            data=b"csrf=guessed&action=unsubscribe",
            headers={**form_type, "Cookie": cookie},
        )
        assert wrong.status == 403
        assert opted_out(engine) == {}

        done = fetch(
            f"{base}/r/{token}", method="POST", data=form, headers={**form_type, "Cookie": cookie}
        )
        assert done.status == 200
        assert "får inga fler veckobrev" in done.text
        assert opted_out(engine) == {"anna@katrineholm.se": "recipient page"}


def test_one_click_unsubscribe_get_changes_nothing_post_unsubscribes(
    site: tuple[Path, Engine],
) -> None:
    config, engine = site
    token = sign(SECRET.encode(), "per@example.se")
    with serve(config, ENV) as base:
        page = fetch(f"{base}/r/{token}/unsubscribe")  # what a link scanner does
        assert page.status == 200 and "<form" in page.text
        assert opted_out(engine) == {}
        empty = fetch(f"{base}/r/{token}/unsubscribe", method="POST", data=b"")
        assert empty.status == 400 and opted_out(engine) == {}
        clicked = fetch(
            f"{base}/r/{token}/unsubscribe",
            method="POST",
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert clicked.status == 200
        assert opted_out(engine) == {"per@example.se": "one-click"}
        again = fetch(
            f"{base}/r/{token}/unsubscribe", method="POST", data=b"List-Unsubscribe=One-Click"
        )
        assert again.status == 200 and opted_out(engine) == {"per@example.se": "one-click"}
        assert "/digests" in fetch(f"{base}/digests").text
        assert "per@example.se" in fetch(f"{base}/digests").text


def test_the_api_answers_json_with_the_search_filters(site: tuple[Path, Engine]) -> None:
    config, engine = site
    with serve(config, ENV) as base:
        everything = json.loads(fetch(f"{base}/api/posts?limit=1000").body)
        with engine.connect() as connection:
            live = connection.execute(
                sa.select(sa.func.count()).select_from(posts).where(posts.c.erased_at.is_(None))
            ).scalar_one()
        assert 0 < len(everything["posts"]) <= live and everything["next"] is None
        first = json.loads(fetch(f"{base}/api/posts?limit=2").body)
        assert len(first["posts"]) == 2 and first["next"].startswith("/api/posts?")
        following = json.loads(fetch(base + first["next"]).body)
        assert {p["id"] for p in first["posts"]}.isdisjoint(p["id"] for p in following["posts"])
        only_x = json.loads(fetch(f"{base}/api/posts?platform=x&limit=1000").body)["posts"]
        assert only_x and {p["platform"] for p in only_x} == {"x"}
        published = [p["published_at"] for p in everything["posts"]]
        assert published == sorted(published, reverse=True)  # newest first
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p) for p in published)

        counted = next(p for p in only_x if p["engagement"])
        metrics = json.loads(fetch(f"{base}/api/posts/{counted['id']}/metrics").body)
        assert metrics["metrics"][-1]["engagement"] == counted["engagement"]
        sources = json.loads(fetch(f"{base}/api/sources").body)["sources"]
        assert {"katrineholm-nyheter", "katrineholm-x"} <= {s["key"] for s in sources}

        for bad in ("since=yesterday", "platform=myspace", "limit=0", "limit=100000", "q=%22open"):
            answer = fetch(f"{base}/api/posts?{bad}")
            assert answer.status == 400, bad
            assert json.loads(answer.body)["error"]
        missing = fetch(f"{base}/api/posts/999999/metrics")
        assert missing.status == 404 and json.loads(missing.body) == {"error": "no such post"}


def test_a_search_downloads_as_csv_jsonl_and_parquet(site: tuple[Path, Engine]) -> None:
    import pyarrow.parquet as pq

    config, _ = site
    with serve(config, ENV) as base:
        listed = json.loads(fetch(f"{base}/api/posts?platform=x&limit=1000").body)["posts"]
        ids = sorted(p["id"] for p in listed)
        csv_answer = fetch(f"{base}/search/download?platform=x&format=csv")
        assert csv_answer.status == 200
        assert (
            csv_answer.headers["content-disposition"] == 'attachment; filename="omvarld-posts.csv"'
        )
        lines = csv_answer.body.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("id,source_key,platform,channel,organisation")
        assert sorted(int(line.split(",")[0]) for line in lines[1:] if line[:1].isdigit()) == ids

        jsonl = fetch(f"{base}/search/download?platform=x&format=jsonl")
        records = [json.loads(line) for line in jsonl.body.splitlines()]
        assert sorted(r["id"] for r in records) == ids

        parquet = fetch(f"{base}/search/download?platform=x&format=parquet")
        table = pq.read_table(io.BytesIO(parquet.body))
        assert sorted(table.column("id").to_pylist()) == ids

        assert fetch(f"{base}/search/download?format=xlsx").status == 400

        # With words, the download is the search's whole result, prefixes included.
        for query in ("vinter*", "kommun", "kommun%20-vinter*"):
            found = json.loads(fetch(f"{base}/api/posts?q={query}&limit=1000").body)["posts"]
            downloaded = fetch(f"{base}/search/download?q={query}&format=jsonl").body
            assert found, query
            assert sorted(json.loads(line)["id"] for line in downloaded.splitlines()) == sorted(
                p["id"] for p in found
            ), query
        malformed = fetch(f"{base}/search/download?q=%22open&format=csv")
        assert malformed.status == 400 and "quote" in json.loads(malformed.body)["error"]


def test_a_query_past_the_timeout_gets_a_friendly_page(site: tuple[Path, Engine]) -> None:
    config, engine = site
    many_posts(engine, 60_000)
    with_web(config, "query_timeout = 0.001")
    with serve(config, ENV) as base:
        answer = fetch(base + "/?lang=en")
        assert answer.status == 503
        assert "took too long" in answer.text and "Traceback" not in answer.text
        assert_secure_headers(answer)
        assert fetch(base + "/healthz").status == 200  # the worker is free again


def many_posts(engine: Engine, count: int) -> None:
    """`count` plain posts of the first source, published now, written in one statement."""
    now = datetime.now(UTC).isoformat(sep=" ")
    numbers = (
        f"SELECT generate_series(1, {count}) AS n"
        if engine.dialect.name == "postgresql"
        else f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count})"
        " SELECT n FROM s"
    )
    with engine.begin() as connection:
        source_id = connection.execute(sa.text("SELECT min(id) FROM sources")).scalar_one()
        connection.execute(
            sa.text(
                "INSERT INTO posts (source_id, platform_post_id, kind, published_at, text,"
                " tags, links, mentions, other_mentions, media, content_hash, fetched_at,"
                " first_seen_at) SELECT :source, 'bulk-' || n, 'post', :now, 'kommun nummer ' || n,"
                " '[]', '[]', '[]', 0, '[]', 'h' || n, :now, :now FROM (" + numbers + ") AS numbers"
            ),
            {"source": source_id, "now": now},
        )


def test_best_match_first_says_where_its_ranking_ends_and_offers_the_rest_newest_first(
    site: tuple[Path, Engine],
) -> None:
    config, engine = site
    many_posts(engine, 1_030)  # "kommun nummer N": more matches than best-first ranks
    with serve(config, ENV) as base:
        last_ranked = fetch(base + "/search?q=kommun&sort=relevance&page=50&lang=en")
        past = fetch(base + "/search?q=kommun&sort=relevance&page=51&lang=en")
        first = fetch(base + "/search?q=kommun&sort=relevance&lang=en")
        newest_tail = fetch(base + "/search?q=kommun&page=52&lang=en")
    assert last_ranked.status == past.status == first.status == 200
    assert last_ranked.text.count('class="hit"') == 20  # positions 981-1,000
    assert past.text.count('class="hit"') == 0
    for answer in (last_ranked, past):
        assert "Best match first ranks the 1,000 matches collected last" in answer.text
        # The way on: the same search newest first, from its first page.
        assert 'sort by <a href="/search?q=kommun">Newest first</a>' in answer.text
        assert "Try kommun*" not in answer.text  # not "nothing found"
    assert "ranks the 1,000" not in first.text
    assert newest_tail.text.count('class="hit"') > 0  # newest first reaches every match


def test_binding_beyond_loopback_without_auth_warns_and_a_taken_port_is_one_line(
    site: tuple[Path, Engine],
) -> None:
    config, _ = site
    port = free_port()
    process = subprocess.Popen(
        [*OMVARLD, "--config", str(config), "web", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        taken = subprocess.run(
            [*OMVARLD, "--config", str(config), "web", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **ENV},
        )
        assert taken.returncode == 2
        assert taken.stderr.strip().splitlines() == [
            f"error: --port {port}: cannot listen on 127.0.0.1: Address already in use"
        ]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert 'warning: serving on 0.0.0.0 with [web] auth = "none"' in stderr


def test_a_digest_opens_exactly_as_mailed_and_only_for_its_recipient(
    site: tuple[Path, Engine], tmp_path: Path
) -> None:
    config, engine = site
    sent = subprocess.run(
        [
            *OMVARLD,
            "--config",
            str(config),
            "digest",
            "send",
            "--week",
            "2026-W48",
            "--outbox",
            str(tmp_path / "outbox"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=120,
    )
    assert sent.returncode == 0, sent.stderr
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, recipient FROM digests")).all()
    ids = {recipient: digest_id for digest_id, recipient in rows}
    mailed = (tmp_path / "outbox").glob("*anna@katrineholm.se*.html")
    with serve(config, ENV) as base:
        archived = fetch(f"{base}/digests/{ids['anna@katrineholm.se']}")
        assert archived.status == 200
        html = next(mailed).read_text(encoding="utf-8")
        assert archived.text.replace("\r\n", "\n").strip() == html.replace("\r\n", "\n").strip()
        policy = archived.headers["content-security-policy"]
        assert "'unsafe-hashes'" in policy and "sha256-" in policy
        assert "unsafe-inline" not in policy and "script-src" not in policy
        own = sign(SECRET.encode(), "anna@katrineholm.se")
        assert fetch(f"{base}/r/{own}/digests/{ids['anna@katrineholm.se']}").status == 200
        assert fetch(f"{base}/r/{own}/digests/{ids['per@example.se']}").status == 404
        listing = fetch(f"{base}/digests").text
        assert "2026-W48" in listing and f"/digests/{ids['per@example.se']}" in listing


def test_unsubscribe_end_to_end_from_the_mailed_header_to_the_next_send(
    site: tuple[Path, Engine], smtp: Server
) -> None:
    """Send → read List-Unsubscribe → GET shows a form and changes nothing → POST → the next
    week's send skips that recipient while the other still gets theirs."""
    config, engine = site
    with serve(config, ENV) as base:
        settings = smtp.settings
        text = config.read_text(encoding="utf-8")
        text = text.replace("[web]\n", f'[web]\npublic_url = "{base}"\n')
        text += f'\n[smtp]\nhost = "127.0.0.1"\nport = {settings.port}\nsecurity = "none"\n'
        config.write_text(text, encoding="utf-8")

        def send(week: str) -> None:
            done = subprocess.run(
                [*OMVARLD, "--config", str(config), "digest", "send", "--week", week],
                capture_output=True,
                text=True,
                env={**os.environ, **ENV},
                timeout=120,
            )
            assert done.returncode == 0, done.stderr

        send("2026-W48")
        (mail,) = smtp.mailbox.to("anna@katrineholm.se")
        # RFC 8058 defines List-Unsubscribe-Post for https addresses only; this server is plain
        # http on loopback, so the header is rightly absent (test_digest_mail covers https).
        assert mail["List-Unsubscribe-Post"] is None
        links = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
        one_click = next(link for link in links if link.startswith(base))
        assert one_click.endswith("/unsubscribe")

        scanned = fetch(one_click)  # a mail provider's link scanner
        assert scanned.status == 200 and "<form" in scanned.text
        assert opted_out(engine) == {}
        clicked = fetch(
            one_click,
            method="POST",
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert clicked.status == 200
        assert opted_out(engine) == {"anna@katrineholm.se": "one-click"}

        # "View in browser" in the mailed HTML opens that very digest.
        html = mail.get_body(preferencelist=("html",)).get_content()
        view = re.search(rf'href="({re.escape(base)}/r/[^"]+/digests/\d+)"', html)
        assert view, "no view-in-browser link"
        shown = fetch(view.group(1)).text
        assert shown.replace("\r\n", "\n").strip() == html.replace("\r\n", "\n").strip()

    smtp.mailbox.received.clear()
    send("2026-W49")
    assert smtp.mailbox.to("anna@katrineholm.se") == []
    assert smtp.mailbox.to("per@example.se") or _had_nothing_to_send(engine, "per@example.se")


def _had_nothing_to_send(engine: Engine, email: str) -> bool:
    """Whether the week's digest for `email` was recorded as skipped for being empty."""
    with engine.connect() as connection:
        status = connection.execute(
            sa.text("SELECT status FROM digests WHERE recipient = :r AND week = '2026-W49'"),
            {"r": email},
        ).scalar_one_or_none()
    return status == "skipped"
