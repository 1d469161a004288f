"""The floor: the least a collector must do, fetching every feed and nothing more.

A bare aiohttp client with up to 64 connections GETs every URL, conditionally once it holds
validators (ETag, Last-Modified, kept in a JSON file between passes), and reads each body. It
parses and stores nothing, so its time is what the network and the server cost.

    floor.py URLS_FILE STATE_JSON
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp


async def fetch_all(urls: list[str], validators: dict[str, dict[str, str]]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(url: str) -> None:
            known = validators.get(url, {})
            headers = {}
            if "etag" in known:
                headers["If-None-Match"] = known["etag"]
            if "last_modified" in known:
                headers["If-Modified-Since"] = known["last_modified"]
            async with session.get(url, headers=headers) as response:
                await response.read()
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
                if response.status == 200:
                    fresh = {}
                    if etag := response.headers.get("ETag"):
                        fresh["etag"] = etag
                    if modified := response.headers.get("Last-Modified"):
                        fresh["last_modified"] = modified
                    validators[url] = fresh

        await asyncio.gather(*(fetch(url) for url in urls))
    return statuses


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    urls = Path(argv[0]).read_text().split()
    state = Path(argv[1])
    validators = json.loads(state.read_text()) if state.exists() else {}
    statuses = asyncio.run(fetch_all(urls, validators))
    state.write_text(json.dumps(validators))
    print(json.dumps(statuses))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
