"""A real webhook receiver on loopback for alert tests: Apprise's json:// URLs POST here.

It keeps every body it accepts; `status` makes it refuse (a webhook that is down or broken),
`delay` makes it take that long before it reads a request (a webhook that hangs).
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.feedserver import LoopbackServer


class WebhookReceiver(LoopbackServer):
    """Start with `with WebhookReceiver() as hook:`; `hook.apprise_url("/path")` to notify it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []  # (path, JSON body)
        self.status = 200
        self.delay = 0.0  # seconds before a request is read and answered
        self.arrived = 0  # requests that reached the receiver, answered or not
        super().__init__()

    def apprise_url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def messages(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [body for p, body in self.received if path is None or p == path]

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                with receiver._lock:
                    receiver.arrived += 1
                time.sleep(receiver.delay)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.status
                if status == 200:
                    with receiver._lock:
                        receiver.received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
