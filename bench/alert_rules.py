"""Alert rules for the benchmarks (issue 14): N `[[alerts]]` rules over the words of
bench/feedgen.py's feeds, and a loopback webhook that takes their messages.

`collect_bench.py --alert-rules 50` adds them to Omvärld's config, so the passes pay for matching
and delivery as a configuration with 50 rules would; `alerts_bench.py` times the matching alone.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from feedgen import AGENCIES, PLACES

# Shapes a person writes: a place, two places, a phrase, a start of a word, an exclusion.
_SHAPES = (
    "{place}",
    "{place} OR {other}",
    '"ny detaljplan" {place}',
    "vattenläcka OR kokningsrekommendation",
    "snöröj* OR halk*",
    "eldningsförbud OR brand -övning",
    "{agency}",
    "trafikomläggning OR vägarbete",
)


def bench_queries(count: int) -> list[str]:
    """`count` queries, each shape in turn with the next place."""
    queries = []
    for index in range(count):
        shape = _SHAPES[index % len(_SHAPES)]
        queries.append(
            shape.format(
                place=PLACES[index % len(PLACES)],
                other=PLACES[(index + 7) % len(PLACES)],
                agency=AGENCIES[index % len(AGENCIES)],
            )
        )
    return queries


def rules_toml(count: int, notify_url: str) -> str:
    """The [[alerts]] tables of `count` rules, every one notifying `notify_url`."""

    def s(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string

    lines = []
    for index, query in enumerate(bench_queries(count), 1):
        lines += [
            "",
            "[[alerts]]",
            f"name = {s(f'Regel {index}')}",
            f"query = {s(query)}",
            f"notify = [{s(notify_url)}]",
        ]
    return "\n".join(lines) + "\n"


class AlertSink:
    """A loopback webhook that answers 200 to every POST and counts them."""

    def __init__(self) -> None:
        self.received = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self._httpd.server_address[1]}/alerts"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
