"""lemon24/reader as the benchmark's reference: `add` (untimed) then `update` (timed).

Runs in its own virtual environment (bench/.venv-reader), so it imports nothing of Omvärld's.

    reader_run.py add DB URLS_FILE      add every URL (one per line) as a feed
    reader_run.py update DB [WORKERS]   update every feed once, whatever its schedule
"""

from __future__ import annotations

import sys
from pathlib import Path

from reader import make_reader


def add(db: str, urls_file: str) -> None:
    reader = make_reader(db)
    for url in Path(urls_file).read_text().split():
        reader.add_feed(url, exist_ok=True)
    reader.close()


def update(db: str, workers: int) -> None:
    reader = make_reader(db)
    # scheduled=False (reader ≥ 3.13): every feed, not only those its scheduler deems due, so
    # each pass asks every feed once, as `omvarld collect --all` does.
    reader.update_feeds(workers=workers, scheduled=False)
    reader.close()


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "add":
        add(argv[1], argv[2])
        return 0
    if len(argv) >= 2 and argv[0] == "update":
        update(argv[1], int(argv[2]) if len(argv) > 2 else 8)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
