"""A real `omvarld web` server over a real database, for the web app's tests (issue 12).

`start_web_app` does what an admin does, each step a real `omvarld` process: writes a config
whose sources are the fixture feeds served on loopback (the ordinary ones, the hostile ones
and the XSS feeds of tests/fixtures/xss/), `db upgrade`, `collect --all`, `digest send` for two
weeks to two recipients through a real SMTP server (aiosmtpd), then starts `omvarld web` on a
free port and waits for `/healthz`. It stops the server when done; the suite's end checks that
no process is left.

The fixture `web_app` (tests/conftest.py makes it available to every test module) runs once per
session and database, SQLite and PostgreSQL, like the suite's other database tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import make_engine
from monitor.models import digests, posts, sources
from monitor.tokens import sign
from tests.feedserver import FeedServer
from tests.platforms import source_table, toml_value
from tests.smtpserver import free_port, start_server

XSS_FIXTURES = Path(__file__).parent / "fixtures" / "xss"
WEEKS = ("2026-W47", "2026-W48")  # the fixture feeds' posts fall in these two weeks
# Signs recipients' links in the server, and in the tests that make a link for a recipient.
SECRET = "webtest-secret-0123456789abcdef"
SECRET_ENV = "OMVARLD_WEB_SECRET"
STARTUP_SECONDS = 60.0  # the server's first start imports the app and opens the database
COMMAND_SECONDS = 300.0

# (key, fixture file, organisation, groups): what the pages list.
ORDINARY = [
    ("katrineholm-nyheter", "feeds/rss20.xml", "Katrineholms kommun", ["kommuner"]),
    ("flen-nyheter", "feeds/rss091.xml", "Flens kommun", ["kommuner"]),
    ("region-sormland", "feeds/atom.xml", "Region Sörmland", ["regioner"]),
    ("lansstyrelsen-sodermanland", "feeds/rdf.xml", "Länsstyrelsen Södermanland", ["myndigheter"]),
    ("skatteverket-youtube", "feeds/youtube.xml", "Skatteverket", ["myndigheter"]),
    ("trafikverket-flickr", "feeds/flickr.xml", "Trafikverket", ["myndigheter"]),
    ("krisinformation-mastodon", "feeds/mastodon.xml", "Krisinformation.se", ["myndigheter"]),
    ("vingaker-nyheter", "feeds/latin1.xml", "Vingåkers kommun", ["kommuner"]),
    ("gnesta-nyheter", "feeds/no_guid.xml", "Gnesta kommun", ["kommuner"]),
]
# Feeds that misbehave: collected with problems, so /sources?problems=1 has rows.
HOSTILE = [
    ("trasig-xml", "feeds/malformed.xml", "Oxelösunds kommun", ["kommuner"]),
    ("entitetsbomb", "feeds/entity_bomb.xml", "Nyköpings kommun", ["kommuner"]),
    ("flyttad-sida", "feeds/html_page.html", "Trosa kommun", ["kommuner"]),
]
XSS = [
    ("xss-rss", "xss/xss-rss.xml", "Skadliga kommunen", ["skadliga"]),
    ("xss-atom", "xss/xss-atom.xml", "Skadliga kommunen", ["skadliga"]),
    ("xss-mastodon", "xss/xss-mastodon.xml", "Skadliga myndigheten", ["skadliga"]),
]
MISSING = ("borttagen", "Eskilstuna kommun")  # a feed that answers 404: a failing source
RECIPIENTS = [
    ("anna@example.se", "Anna Ångström", "sv"),
    ("bo@example.se", "Bo Berg", "en"),
]


@dataclass(frozen=True)
class WebApp:
    """A running `omvarld web` and what it serves."""

    base_url: str
    config: Path
    env: dict[str, str]  # the environment the server runs with (its secret)
    database_url: str
    database: str  # "sqlite" or "postgresql"
    mail: tuple[EmailMessage, ...]  # the digests as mailed
    log: Path  # the server's stdout and stderr

    def url(self, path: str) -> str:
        return self.base_url + path

    def recipient_token(self, email: str) -> str:
        """The signed token of `email`'s recipient page, as the server's secret signs it."""
        return sign(SECRET.encode(), email)

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        """The app's database, for tests that look up which ids to open."""
        engine = make_engine(self.database_url)
        try:
            yield engine
        finally:
            engine.dispose()

    def post_ids(self, *source_keys: str) -> list[int]:
        """The ids of the posts of these sources, oldest first."""
        query = (
            sa.select(posts.c.id)
            .join(sources, sources.c.id == posts.c.source_id)
            .where(sources.c.key.in_(source_keys))
            .order_by(posts.c.id)
        )
        with self.engine() as engine, engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def digests(self) -> list[tuple[int, str]]:
        """(id, recipient) of every archived digest, oldest first."""
        query = sa.select(digests.c.id, digests.c.recipient).order_by(digests.c.id)
        with self.engine() as engine, engine.connect() as connection:
            return [(row.id, row.recipient) for row in connection.execute(query)]

    def server_log(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def write_config(directory: Path, database_url: str, feeds: FeedServer, smtp_port: int,
                 web_port: int) -> Path:  # fmt: skip
    lines = [
        f"[database]\nurl = {toml_value(database_url)}\n",
        "[collect]\nper_host = 8  # every fixture feed is on one loopback host\n",
        '[digest]\nfrom = "Omvärld <omvarld@kommun.example.se>"\n',
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\ntimeout = 5\n',
        f'[web]\npublic_url = "http://127.0.0.1:{web_port}"\nsecret_env = "{SECRET_ENV}"\n',
    ]
    for email, name, language in RECIPIENTS:
        lines.append(
            f"[[recipients]]\nemail = {toml_value(email)}\nname = {toml_value(name)}\n"
            f"language = {toml_value(language)}\nskip_empty = false\n"
        )
    for key, fixture, organisation, groups in ORDINARY + HOSTILE + XSS:
        body = (Path(__file__).parent / "fixtures" / fixture).read_bytes()
        content_type = "text/html" if fixture.endswith(".html") else "application/xml"
        url = feeds.add(f"/{fixture}", body=body, content_type=content_type)
        table = source_table("feed", key=key, url=url, organisation=organisation)
        lines.append(table + f"groups = {json.dumps(groups, ensure_ascii=False)}\n")
    key, organisation = MISSING
    lines.append(source_table("feed", key=key, url=feeds.url("/finns-inte.xml"),
                              organisation=organisation))  # fmt: skip
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_omvarld(config: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> str:
    """Run one `omvarld` command as an admin would; its stdout. Fails the fixture with the
    command's stderr when it exits with a code not in `ok`."""
    command = [sys.executable, "-m", "monitor", "--config", str(config), *args]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=COMMAND_SECONDS, check=False
    )
    if done.returncode not in ok:
        raise AssertionError(
            f"omvarld {' '.join(args)} exited {done.returncode}:\n{done.stderr}\n{done.stdout}"
        )
    return done.stdout


def wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"omvarld web exited {process.returncode} before serving:\n"
                + log.read_text(encoding="utf-8", errors="replace")[-3000:]
            )
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"omvarld web did not answer /healthz within {STARTUP_SECONDS:.0f} s:\n"
        + log.read_text(encoding="utf-8", errors="replace")[-3000:]
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a service manager stops it; SIGKILL if it does not end in ten seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def postgresql_database(base: str) -> Iterator[str]:
    """The URL of a new database on the test server, dropped afterwards. A database rather than
    the suite's usual schema: the server's URL then carries no search_path option for the app
    to keep (the suite's schema-per-test fixture is for tests that open the database themselves)."""
    name = f"omvarld_web_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")  # CREATE DATABASE needs it
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def start_web_app(database: str, database_url: str, directory: Path) -> Iterator[WebApp]:
    """Fill `database_url` from the fixture feeds, send digests, serve it with `omvarld web`."""
    web_port = free_port()
    env = {**os.environ, SECRET_ENV: SECRET, "COLUMNS": "200"}
    env.pop("OMVARLD_DATABASE_URL", None)  # the config names the database
    smtp_servers = start_server()
    smtp = next(smtp_servers)
    try:
        with FeedServer() as feeds:
            config = write_config(directory, database_url, feeds, smtp.settings.port, web_port)
            run_omvarld(config, env, "db", "upgrade")
            # 1: some sources failed, as the hostile and missing ones must.
            run_omvarld(config, env, "collect", "--all", ok=(0, 1))
        for week in WEEKS:
            run_omvarld(config, env, "digest", "send", "--week", week)
        mail = tuple(smtp.mailbox.received)
    finally:
        smtp_servers.close()
    log = directory / "web.log"
    with serve(config, env, web_port, log) as (_, base_url):
        yield WebApp(base_url, config, env, database_url, database, mail, log)


@contextmanager
def serve(
    config: Path, env: dict[str, str], port: int, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`omvarld web` on 127.0.0.1:`port` until the block ends, its output in `log`: the
    process (one worker: the process that serves) and the base URL, once /healthz answers."""
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "monitor", "--config", str(config), "web",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(process, base_url, log)
        yield process, base_url
    finally:
        stop(process)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def web_app(request: pytest.FixtureRequest) -> Iterator[WebApp]:
    """One running `omvarld web` per database for the whole session (starting one costs a
    collection and two digest sends): tests only read from it."""
    database = request.param
    directory = Path(tempfile.mkdtemp(prefix=f"omvarld-web-{database}-"))
    try:
        if database == "sqlite":
            with start_web_app(database, f"sqlite:///{directory / 'omvarld.db'}", directory) as app:
                yield app
            return
        base = os.environ.get("OMVARLD_TEST_DATABASE_URL")
        if not base:
            pytest.skip("OMVARLD_TEST_DATABASE_URL is not set: PostgreSQL variant skipped")
        with postgresql_database(base) as url, start_web_app(database, url, directory) as app:
            yield app
    finally:
        shutil.rmtree(directory, ignore_errors=True)
