"""The ASGI app behind `omvarld web`: routes, rendering, and what every response carries.

Endpoints are plain functions (Starlette runs them in its thread pool) over the read-only
engine of monitor/web/database.py; what they read is in monitor/web/reads.py and the other
read modules of the project, so a page and the CLI say the same. Templates autoescape
everything; collected text never reaches a page as markup.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.links import http_url
from digest.render import COUNT_LABELS, Formatter
from monitor.config import Config, RecipientConfig, load_config
from monitor.tokens import BadToken, read_secret, verify
from monitor.web import reads
from monitor.web.charts import plot_curve
from monitor.web.database import is_timeout, make_read_engine, make_write_engine
from monitor.web.i18n import LANGUAGE_COOKIE, LANGUAGES, TEXTS, choose_language
from monitor.web.params import PAGE_SIZE, SearchRequest, read_number, read_search
from monitor.web.security import (
    CSP,
    CSRF_COOKIE,
    CSRF_FIELD,
    SECURITY_HEADERS,
    csp_for_mailed_html,
    csrf_matches,
    is_trusted,
    needs_user,
    new_csrf_token,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CONFIG_VARIABLE = "OMVARLD_CONFIG"  # how `omvarld web` tells its uvicorn workers the config
MAX_FORM_BYTES = 4096  # the only forms are an unsubscribe button and its token
MAX_API_LIMIT = 1000
MAX_API_OFFSET = 100_000
DOWNLOAD_CHUNK = 64 * 1024
DOWNLOAD_TIMEOUT = 3600.0  # a download streams the whole result: its own, longer bound
ONE_CLICK = "List-Unsubscribe=One-Click"
LAST_DAYS = timedelta(days=7)  # the home page without ?week=
YEAR = 365 * 24 * 3600


@dataclass
class Site:
    """What every request needs: the config, the two engines, the templates, the secret."""

    config: Config
    read: Engine
    write: Engine
    templates: jinja2.Environment
    secret: bytes | None


def create_app(config: Config) -> Starlette:
    """The web app over `config`'s database."""
    url = config.database_url
    site = Site(
        config=config,
        read=make_read_engine(url, config.web.query_timeout),
        write=make_write_engine(url),
        templates=_environment(),
        secret=read_secret(config),
    )
    routes = [
        Route("/", home),
        Route("/search", search),
        Route("/search/download", download),
        Route("/posts/{post_id:int}", post_page),
        Route("/sources", sources_page),
        Route("/sources/{key:path}", source_page),
        Route("/digests", digests_page),
        Route("/compare", compare_page),
        Route("/digests/{digest_id:int}", digest_page),
        Route("/r/{token}", recipient_route, methods=["GET", "POST"]),
        Route("/r/{token}/unsubscribe", unsubscribe, methods=["GET", "POST"]),
        Route("/r/{token}/digests/{digest_id:int}", recipient_digest),
        Route("/accessibility", accessibility),
        Route("/healthz", healthz),
        Route("/api/posts", api_posts),
        Route("/api/sources", api_sources),
        Route("/api/posts/{post_id:int}/metrics", api_metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            sa.exc.OperationalError: _database_error,
            sa.exc.TimeoutError: _database_error,
            Exception: _server_error,
        },
    )
    app.state.site = site
    return Guard(app, site)  # type: ignore[return-value]


def create_app_from_environment() -> Starlette:
    """uvicorn's factory in each worker process: the config `omvarld web` named."""
    return create_app(load_config(os.environ[CONFIG_VARIABLE]))


class Guard:
    """Security headers on every response; `auth = "proxy"` enforced before any route runs."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        web = self.site.config.web
        client = scope.get("client")
        from_proxy = is_trusted(client[0] if client else None, web.trusted_proxies)
        request = Request(scope)
        if from_proxy and request.headers.get("x-forwarded-proto") == "https":
            scope["scheme"] = "https"  # cookies get Secure behind a TLS-terminating proxy
        if web.auth == "proxy" and needs_user(scope["path"]):
            user = request.headers.get(web.proxy_user_header, "").strip()
            if not from_proxy or not user:
                scope.setdefault("app", self.app)
                response = _error_page(request, 403, "forbidden", site=self.site)
                await response(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = CSP
                for name, value in SECURITY_HEADERS.items():
                    if name.lower() not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------------- rendering


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template is HTML; collected text is always escaped
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.globals["http_url"] = http_url
    return environment


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def language_of(request: Request) -> str:
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
    )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    site: Site | None = None,
) -> HTMLResponse:
    """A page in the reader's language, with the language switch pointing at this page."""
    site = site or _site(request)
    language = language_of(request)
    other = "en" if language == "sv" else "sv"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    switch = request.url.path + "?" + urlencode([*query, ("lang", other)])
    html = site.templates.get_template(template).render(
        lang=language,
        other_lang=other,
        switch_url=switch,
        t=TEXTS[language],
        fmt=Formatter(language, site.config.digest.timezone),
        count_labels=COUNT_LABELS[language],
        path=request.url.path,
        **(context or {}),
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=YEAR, httponly=True, samesite="lax")
    return response


def _error_page(request: Request, status: int, key: str, *, site: Site | None = None) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": TEXTS["en"][key]}, status_code=status)
    return render(
        request, "error.html.j2", {"message_key": key, "status": status}, status=status, site=site
    )


async def _http_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "status_code", 500)
    key = {404: "not_found", 403: "forbidden", 400: "bad_request"}.get(status, "bad_request")
    if status == 405:
        return Response(status_code=405, headers={"Allow": "GET"})
    return _error_page(request, status, key)


async def _database_error(request: Request, error: Exception) -> Response:
    if is_timeout(error):
        log.warning("%s: query cancelled after [web] query_timeout", request.url.path)
        return _error_page(request, 503, "timeout")
    return await _server_error(request, error)


async def _server_error(request: Request, error: Exception) -> Response:
    log.error("%s: %s", request.url.path, error, exc_info=error)
    return _error_page(request, 500, "server_error")


def _now() -> datetime:
    return datetime.now(UTC)


def _params(request: Request) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name, []).append(value)
    return values


# -------------------------------------------------------------------------------------- pages


def home(request: Request) -> Response:
    """The last seven days, or the ISO week `?week=2026-W48` asks for, with links to the
    weeks before and after."""
    from digest.model import Week

    site = _site(request)
    now = _now()
    zone = site.config.digest.timezone
    asked = request.query_params.get("week")
    week = None
    if asked:
        try:
            week = Week.parse(asked, zone)
        except ValueError:
            return _error_page(request, 400, "bad_week")
    start, end = (week.start, week.end) if week else (now - LAST_DAYS, now)
    current = Week.previous(now + timedelta(days=7), zone)  # the week `now` is in
    earlier = week.shifted(-1) if week else current.shifted(-1)
    later = week.shifted(1) if week and week.shifted(1).start <= now else None
    return render(
        request,
        "home.html.j2",
        {
            "section": "home",
            "week": week,
            "start": start,
            "end": end,
            "earlier": earlier,
            "later": later,
            "latest": week is not None,
            "week_overview": reads.summarise_week(site.read, start, end),
            "attention": reads.list_attention(site.read),
        },
    )


def search(request: Request) -> Response:
    site = _site(request)
    wanted, problems = read_search(_params(request), _now())
    hits: list[Any] = []
    more, suggestion, ranked_only = False, None, None
    if not problems:
        hits, problem = _find(site.read, wanted, PAGE_SIZE + 1, wanted.offset)
        if problem:
            problems.append(problem)
        more = len(hits) > PAGE_SIZE
        hits = hits[:PAGE_SIZE]
        ranked_only = _ranked_only(wanted, len(hits))
        if wanted.q and not hits and not problems and ranked_only is None:
            from monitor.search import suggest_prefix

            suggestion = suggest_prefix(wanted.q)
    return render(
        request,
        "search.html.j2",
        {
            "section": "search",
            "wanted": wanted,
            "problems": problems,
            "hits": hits,
            "more": more,
            "suggestion": suggestion,
            "ranked_only": ranked_only,
            "groups": _groups(site.read),
            "platforms": _platform_keys(),
            "kinds": _kinds(),
        },
        status=400 if problems else 200,
    )


def compare_page(request: Request) -> Response:
    """Organisations side by side per platform for the ISO week `?week=` (default: the last
    complete week), of every active source or of the sources in `?group=`: what
    `omvarld compare` prints."""
    from digest.load import load_comparisons
    from digest.model import Week

    site = _site(request)
    now = _now()
    zone = site.config.digest.timezone
    asked = request.query_params.get("week")
    try:
        week = Week.parse(asked, zone) if asked else Week.previous(now, zone)
    except ValueError:
        return _error_page(request, 400, "bad_week")
    groups = _groups(site.read)
    group = request.query_params.get("group") or None
    if group is not None and group not in groups:
        return _error_page(request, 400, "bad_group")
    later = week.shifted(1)
    return render(
        request,
        "compare.html.j2",
        {
            "section": "compare",
            "week": week,
            "group": group,
            "groups": groups,
            "earlier": week.shifted(-1),
            "later": later if later.end <= now else None,
            "rows": load_comparisons(site.read, week, group=group, now=now),
        },
    )


def _ranked_only(wanted: SearchRequest, shown: int) -> int | None:
    """How many matches best-first ranks, when this page shows the last of them or is past
    them (the page then says so and offers the rest newest first); else None."""
    from monitor.search import RELEVANCE_POOL

    reached = wanted.offset + shown >= RELEVANCE_POOL
    return RELEVANCE_POOL if wanted.q and wanted.sort == "relevance" and reached else None


def _find(
    engine: Engine, wanted: SearchRequest, limit: int, offset: int
) -> tuple[list[Any], str | None]:
    """A page of posts for a search: by its words when it has any, else by its filters."""
    from monitor.search import QueryError, search_posts

    if not wanted.q:
        return reads.list_filtered_posts(engine, wanted.chosen, limit, offset), None
    try:
        return (
            search_posts(engine, wanted.q, wanted.chosen, limit, sort=wanted.sort, offset=offset),
            None,
        )
    except QueryError as error:
        return [], str(error)


def _groups(engine: Engine) -> list[str]:
    from monitor.sources import list_source_groups

    return list_source_groups(engine)


def _platform_keys() -> tuple[str, ...]:
    from monitor.platforms import CHANNEL_KEYS

    return CHANNEL_KEYS


def _kinds() -> tuple[str, ...]:
    from monitor.types import KINDS

    return KINDS


def post_page(request: Request) -> Response:
    site = _site(request)
    post = reads.find_post(site.read, request.path_params["post_id"])
    if post is None:
        raise HTTPException(404)
    curve = plot_curve([(point.observed_at, point.engagement) for point in post.metrics])
    return render(request, "post.html.j2", {"section": "search", "post": post, "curve": curve})


PROBLEM_STATES = ("failing", "broken")


def sources_page(request: Request) -> Response:
    from monitor.queries import list_source_health

    site = _site(request)
    now = _now()
    problems_only = request.query_params.get("problems") == "1"
    health = list_source_health(site.read, now=now)
    if problems_only:
        health = [
            source
            for source in health
            if source.consecutive_failures > 0 or source.status in PROBLEM_STATES
        ]
    return render(
        request,
        "sources.html.j2",
        {"section": "sources", "sources": health, "problems_only": problems_only, "now": now},
    )


def source_page(request: Request) -> Response:
    site = _site(request)
    source = reads.find_source(site.read, request.path_params["key"])
    if source is None:
        raise HTTPException(404)
    return render(
        request,
        "source.html.j2",
        {"section": "sources", "source": source, "runs": reads.list_runs(site.read, source.id)},
    )


def digests_page(request: Request) -> Response:
    from digest.optouts import list_opt_outs

    site = _site(request)
    recipients = {r.email.lower(): r for r in site.config.recipients}
    rows = reads.list_digest_rows(site.read)
    weeks: dict[str, list[reads.DigestRow]] = {}
    for row in rows:
        weeks.setdefault(row.week, []).append(row)
    return render(
        request,
        "digests.html.j2",
        {
            "section": "digests",
            "weeks": weeks,
            "recipients": recipients,
            "groups": site.config.groups,
            "opt_outs": sorted(list_opt_outs(site.read).values(), key=lambda o: o.opted_out_at),
        },
    )


def digest_page(request: Request) -> Response:
    return _mailed_digest(request, request.path_params["digest_id"], recipient=None)


def _mailed_digest(request: Request, digest_id: int, recipient: str | None) -> Response:
    """The digest exactly as mailed: its own HTML, with a policy that allows only its styles."""
    from digest.archive import find_digest, read_html_part, read_text_part

    site = _site(request)
    record = find_digest(site.read, digest_id=digest_id)
    if record is None or record.message is None:
        raise HTTPException(404)
    if recipient is not None and record.recipient.lower() != recipient.lower():
        raise HTTPException(404)  # another person's digest: as if it did not exist
    html = read_html_part(record.message)
    if html is None:
        return render(
            request,
            "digest_text.html.j2",
            {"section": "digests", "record": record, "text": read_text_part(record.message)},
        )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp_for_mailed_html(html)})


# --------------------------------------------------------------------------- recipients' pages


def _recipient(request: Request) -> tuple[str, RecipientConfig | None]:
    """The recipient a signed link names (and their configured settings, if still there)."""
    site = _site(request)
    if site.secret is None:
        raise HTTPException(404)
    try:
        email = verify(site.secret, request.path_params["token"])
    except BadToken:
        raise HTTPException(400) from None
    configured = next((r for r in site.config.recipients if r.email.lower() == email.lower()), None)
    return email, configured


def _token_error(request: Request, error: HTTPException) -> Response:
    site = _site(request)
    key = "no_secret" if site.secret is None else "bad_token"
    return _error_page(request, error.status_code, key)


def recipient_page(request: Request) -> Response:
    try:
        email, configured = _recipient(request)
    except HTTPException as error:
        return _token_error(request, error)
    if request.method == "POST":
        return _unsubscribe_by_form(request, email)
    return _recipient_view(request, email, configured)


def _recipient_view(
    request: Request, email: str, configured: RecipientConfig | None, *, done: bool = False
) -> Response:
    from digest.optouts import list_opt_outs

    site = _site(request)
    opted_out = list_opt_outs(site.read).get(email.lower())
    csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    response = render(
        request,
        "recipient.html.j2",
        {
            "email": email,
            "recipient": configured,
            "digest": site.config.digest,
            "opted_out": opted_out,
            "csrf": csrf,
            "csrf_field": CSRF_FIELD,
            "token": request.path_params["token"],
            "done": done,
            "recipient_page": True,
        },
    )
    _set_csrf_cookie(request, response, csrf)
    return response


def _set_csrf_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        value,
        path="/r/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def _read_form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(400)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def _unsubscribe_by_form(request: Request, email: str) -> Response:
    form = request.state.form if hasattr(request.state, "form") else {}
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD)):
        return _error_page(request, 403, "csrf")
    _opt_out(request, email, "recipient page")
    _, configured = _recipient(request)
    return _recipient_view(request, email, configured, done=True)


def _opt_out(request: Request, email: str, via: str) -> None:
    from digest.optouts import record_opt_out

    if record_opt_out(_site(request).write, email, _now(), via):
        log.info("unsubscribed %s via %s", email, via)


async def recipient_route(request: Request) -> Response:
    """The recipient page; its form's body is read here, where reading is async, and the
    database work runs in the thread pool like every other page's."""
    if request.method == "POST":
        request.state.form = await _read_form(request)
    return await run_in_threadpool(recipient_page, request)


async def unsubscribe(request: Request) -> Response:
    """RFC 8058: a POST with `List-Unsubscribe=One-Click` unsubscribes at once; a GET (link
    scanners fetch every link in a mail) only shows a page with a button."""
    try:
        email, configured = await run_in_threadpool(_recipient, request)
    except HTTPException as error:
        return _token_error(request, error)
    if request.method == "GET":
        return await run_in_threadpool(_recipient_view, request, email, configured)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return _error_page(request, 400, "bad_request")
    # RFC 8058 asks for this body, urlencoded or as a multipart field; nothing else counts.
    if ONE_CLICK.encode() not in body and b'name="List-Unsubscribe"' not in body:
        return _error_page(request, 400, "bad_request")
    await run_in_threadpool(_opt_out, request, email, "one-click")
    return await run_in_threadpool(_recipient_view, request, email, configured, done=True)


def recipient_digest(request: Request) -> Response:
    try:
        email, _ = _recipient(request)
    except HTTPException as error:
        return _token_error(request, error)
    return _mailed_digest(request, request.path_params["digest_id"], recipient=email)


def accessibility(request: Request) -> Response:
    return render(
        request,
        "accessibility.html.j2",
        {"section": "accessibility", "contact": _site(request).config.digest.sender},
    )


def healthz(request: Request) -> Response:
    site = _site(request)
    try:
        # Through the ordinary engine: a health check is not a page, and must answer even
        # when [web] query_timeout is set very short.
        with site.write.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        log.error("healthz: %s", error)
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


# ------------------------------------------------------------------------------------ the API


def api_posts(request: Request) -> Response:
    """`/api/posts`: the search page's parameters, plus `limit` and `offset`; JSON."""
    site = _site(request)
    params = _params(request)
    wanted, problems = read_search(params, _now())
    limit = read_number(_last(params, "limit"), "limit", 1, MAX_API_LIMIT, 100, problems) or 100
    offset = read_number(_last(params, "offset"), "offset", 0, MAX_API_OFFSET, 0, problems) or 0
    if problems:
        return JSONResponse({"error": "; ".join(problems)}, status_code=400)
    hits, problem = _find(site.read, wanted, limit + 1, offset)
    if problem:
        return JSONResponse({"error": problem}, status_code=400)
    following = None
    if len(hits) > limit:
        following = "/api/posts?" + wanted.url(limit=limit, offset=offset + limit, page=None)
    return _json({"posts": hits[:limit], "next": following})


def _last(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    given = params.get(name)
    return given[-1] if given else None


def api_sources(request: Request) -> Response:
    from monitor.queries import list_source_health

    return _json({"sources": list_source_health(_site(request).read, now=_now())})


def api_metrics(request: Request) -> Response:
    post = reads.find_post(_site(request).read, request.path_params["post_id"])
    if post is None:
        return JSONResponse({"error": "no such post"}, status_code=404)
    return _json(
        {
            "post_id": post.id,
            "metrics": [
                {"observed_at": point.observed_at, **point.counts, "engagement": point.engagement}
                for point in post.metrics
            ],
        }
    )


def _json(value: Any) -> Response:
    return Response(
        json.dumps(value, default=_jsonable, ensure_ascii=False),
        media_type="application/json",
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


# ---------------------------------------------------------------------------------- downloads


class _Chunks(io.RawIOBase):
    """A file the export writers write into, emptied by the response a chunk at a time."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.size += len(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        return data


def download(request: Request) -> Response:
    """The search's whole result as CSV, JSONL or Parquet, streamed: the export's columns and
    writers (monitor/export.py), a chunk at a time, in constant memory."""
    from monitor.export import COLUMNS, Dataset, ExportError, ExportFormat, writer_for

    site = _site(request)
    wanted, problems = read_search(_params(request), _now())
    chosen_format = request.query_params.get("format", "csv")
    try:
        export_format = ExportFormat(chosen_format)
        open_writer = writer_for(export_format)
    except (ValueError, ExportError):
        problems.append(f"format: expected csv, jsonl or parquet, got {chosen_format!r}")
    if problems:
        return JSONResponse({"error": "; ".join(problems)}, status_code=400)
    query = _download_query(site.read, wanted)
    if isinstance(query, str):
        return JSONResponse({"error": query}, status_code=400)
    columns = COLUMNS[Dataset.POSTS]

    def chunks() -> Iterator[bytes]:
        from monitor.export import stream_rows

        sink = _Chunks()
        with site.read.connect() as connection:
            connection = connection.execution_options(web_timeout=DOWNLOAD_TIMEOUT)
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            writer = open_writer(sink, columns)  # type: ignore[arg-type]
            for row in stream_rows(connection, query):
                writer.write(row)
                if sink.size >= DOWNLOAD_CHUNK:
                    yield sink.take()
            writer.close()
        yield sink.take()

    name = f"omvarld-posts.{export_format.value}"
    media = {
        "csv": "text/csv; charset=utf-8",
        "jsonl": "application/x-ndjson",
        "parquet": "application/vnd.apache.parquet",
    }[export_format.value]
    disposition = f'attachment; filename="{name}"'
    return StreamingResponse(
        chunks(), media_type=media, headers={"Content-Disposition": disposition}
    )


def _download_query(engine: Engine, wanted: SearchRequest) -> Any:
    """The export's posts query for the search, or the search's one-line problem."""
    from monitor.export import posts_query
    from monitor.search import QueryError, search_condition

    query = posts_query(wanted.chosen)
    if not wanted.q:
        return query
    try:
        return query.where(search_condition(engine.dialect.name, wanted.q))
    except QueryError as error:
        return str(error)
