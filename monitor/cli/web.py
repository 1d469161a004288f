"""`omvarld web`: the web app on uvicorn (docs/operations.md: behind nginx and oauth2-proxy)."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Annotated

import typer

from monitor.cli.common import err, fail, out
from monitor.cli.root import app

LOOPBACK_NAMES = ("localhost",)


@app.command("web")
def web(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (production: about one per core).")
    ] = 1,
) -> None:
    """Serve search, posts, source health and the digest archive in a browser."""
    import uvicorn

    from monitor.web.app import CONFIG_VARIABLE

    config = ctx.obj.config()
    ctx.obj.engine()  # the schema current (SQLite) or the one line that says how to make it so
    if config.web.auth == "none" and not _is_loopback(host):
        err.print(
            f'warning: serving on {host} with [web] auth = "none": anyone who reaches port'
            f" {port} reads everything; put it behind a proxy with single sign-on"
            " (docs/operations.md) or listen on 127.0.0.1",
            markup=False,
        )
    _check_port_free(host, port)
    os.environ[CONFIG_VARIABLE] = str(config.path)
    shown_host = f"[{host}]" if ":" in host else host
    out.print(f"Omvärld web on http://{shown_host}:{port}/ (Ctrl-C stops it)", markup=False)
    uvicorn.run(
        "monitor.web.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        server_header=False,
        # The app itself reads X-Forwarded-Proto, from trusted proxies only (monitor/web/app.py
        # Guard): uvicorn's own handling would replace the peer address the proxy check needs.
        proxy_headers=False,
    )


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port_free(host: str, port: int) -> None:
    """One line instead of uvicorn's traceback-like log when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            fail(f"--port {port}: cannot listen on {host}: {error.strerror}")
