"""A real HTTP server on loopback for collector tests.

It serves registered routes with the behaviour of real publishers: ETag and Last-Modified with
conditional requests, gzip and brotli, redirects, error statuses with Retry-After, and responses
that stall. Every request is recorded so a test can assert what the client sent.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import brotli

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
LAST_MODIFIED = "Mon, 23 Nov 2026 08:00:00 GMT"
LAST_MODIFIED_AT = parsedate_to_datetime(LAST_MODIFIED)


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    validators: bool = True  # send ETag and Last-Modified, answer conditional requests
    encoding: str | None = None  # "gzip" or "br"
    location: str | None = None  # for redirects
    stall_seconds: float = 0.0  # after the headers, before the body
    trickle_seconds: float = 0.0  # send the body one byte at a time, this long apart


@dataclass(frozen=True)
class Request:
    path: str  # with the query string
    headers: dict[str, str]
    status: int

    @property
    def query(self) -> dict[str, str]:
        """The query parameters (the last value of each)."""
        return dict(parse_qsl(urlsplit(self.path).query))


class LoopbackServer:
    """A ThreadingHTTPServer on a free port of `host`, serving in a thread of its own between
    `with`'s start and end; subclasses say how it answers (`_make_handler`)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, 0), self._make_handler())
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError


class FeedServer(LoopbackServer):
    """Start with `with FeedServer() as server:`; `server.url(path)` gives the address."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        # Another host only inside a network namespace: see redirect_driver.
        self.routes: dict[str, Route] = {}
        self.handlers: dict[str, Callable[[Request], Route]] = {}
        # Serves every path no route or handler claims: a server that misbehaves everywhere.
        self.fallback: Callable[[Request], Route] | None = None
        self.requests: list[Request] = []
        super().__init__(host)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, route: Route | None = None, **options: Any) -> str:
        self.routes[path] = route or Route(**options)
        return self.url(path)

    def add_handler(self, path: str, handler: Callable[[Request], Route]) -> str:
        """Serve `path` (any query string) with a function of the request: for APIs whose
        answer depends on parameters (pages, cursors) or on how often they were called."""
        self.handlers[path] = handler
        return self.url(path)

    def add_fixture(self, path: str, fixture: str, **options: Any) -> str:
        return self.add(path, body=(FIXTURES / fixture).read_bytes(), **options)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                route = server.routes.get(self.path)
                handler = server.handlers.get(urlsplit(self.path).path)
                handler = handler or server.fallback
                if route is None and handler is not None:
                    route = handler(Request(self.path, headers, 0))
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    server._record(Request(self.path, headers, 404))
                    return
                status, body, out = self._respond(route, headers)
                server._record(Request(self.path, headers, status))
                self._send(
                    status, body, out, stall=route.stall_seconds, trickle=route.trickle_seconds
                )

            def _respond(
                self, route: Route, headers: dict[str, str]
            ) -> tuple[int, bytes, dict[str, str]]:
                out = {"Content-Type": route.content_type, **route.headers}
                if route.location:
                    out["Location"] = route.location
                if route.validators and route.status == 200:
                    etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                    out["ETag"] = etag
                    out["Last-Modified"] = LAST_MODIFIED
                    if headers.get("if-none-match") == etag:
                        return 304, b"", {"ETag": etag}
                    since = headers.get("if-modified-since")
                    unchanged = since and parsedate_to_datetime(since) >= LAST_MODIFIED_AT
                    if unchanged and "if-none-match" not in headers:
                        return 304, b"", {"Last-Modified": LAST_MODIFIED}
                body = route.body
                if route.encoding == "gzip":
                    body, out["Content-Encoding"] = gzip.compress(body), "gzip"
                elif route.encoding == "br":
                    body, out["Content-Encoding"] = brotli.compress(body), "br"
                return route.status, body, out

            def _send(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str],
                stall: float = 0.0,
                trickle: float = 0.0,
            ) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Date", format_datetime(datetime.now(UTC), usegmt=True))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                if stall:
                    time.sleep(stall)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if not trickle:
                        self.wfile.write(body)  # the client may have given up on a stall
                    for index in range(len(body) if trickle else 0):
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                        time.sleep(trickle)

        return Handler


def flen_rss(*items: tuple[str, str, timedelta], now: datetime) -> bytes:
    """Flen's news feed with (guid, title, age) items, each published `age` before `now`."""
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title>"
        f"<link>https://www.flen.se/nyheter/{guid}</link>"
        f"<pubDate>{format_datetime(now - age)}</pubDate></item>"
        for guid, title, age in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Flen</title>'
        f"{entries}</channel></rss>"
    ).encode()
