"""The JSON-API client's contract (collectors/api.ApiClient) against the loopback server: what
every platform's client inherits: auth, counting, JSON decoding, error mapping and redaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from collectors.api import ApiClient, ApiError
from collectors.http import REDACTED, HttpClient, Response
from tests.feedserver import FeedServer, Request, Route

TOKEN = "test-api-token-omvarld"  # fake; shaped unlike real tokens
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # the attempt's start, as the engine passes it
T = TypeVar("T")


def answer(document: Any, status: int = 200, **headers: str) -> Route:
    return Route(
        body=json.dumps(document).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
        validators=False,
    )


def echo(status: int) -> Callable[[Request], Route]:
    """An API that repeats the request in its answer, as Flickr does (key included)."""

    def handle(request: Request) -> Route:
        said = {"query": request.query, "auth": request.headers.get("authorization")}
        return answer({"echo": said, "message": f"refused {said}"}, status)

    return handle


def run(call: Callable[[ApiClient], Awaitable[T]], client: Callable[[HttpClient], ApiClient]) -> T:
    """Run `call` with a client made by `client` on a fresh HttpClient."""

    async def main() -> T:
        async with HttpClient(user_agent="Omvarld/test") as http:
            return await call(client(http))

    return asyncio.run(main())


class EchoingApi(ApiClient):
    """A platform whose error body carries its own message (the hook every platform writes)."""

    def describe_error(self, response: Response, lookup: str | None) -> ApiError:
        message = json.loads(response.body)["message"]
        return ApiError(f"{self.platform}: {lookup}: {message}", http_status=response.status)


def test_every_answer_is_counted_and_the_result_status_is_the_last_taken(
    feed_server: FeedServer,
) -> None:
    ok, gone = answer({"id": "1"}), answer({"error": "NotFound"}, status=404)
    feed_server.add("/api/thing", ok)
    feed_server.add("/api/missing", gone)

    async def call(api: ApiClient) -> tuple[Any, ApiError, ApiClient]:
        document, _ = await api.fetch("/thing")
        with pytest.raises(ApiError) as error:
            await api.fetch("/missing")
        return document, error.value, api

    document, error, api = run(
        call, lambda http: ApiClient(http, feed_server.url("/api/"), platform="Demo", now=NOW)
    )

    assert document == {"id": "1"}
    assert error.message == "Demo: not found (HTTP 404)"
    assert error.http_status == 404 and error.gone
    # The error's body was received too; the status a good result reports stays the answer's.
    assert api.bytes_received == len(ok.body) + len(gone.body)
    assert api.requests == 2 and api.last_status == 200


def test_a_rate_limit_is_mapped_with_its_reset_and_names_the_credential(
    feed_server: FeedServer,
) -> None:
    feed_server.add("/limited", answer({}, status=429, **{"Retry-After": "120"}))
    feed_server.add("/refused", answer({}, status=401))

    async def call(api: ApiClient) -> list[ApiError]:
        errors = []
        for path in ("/limited", "/refused"):
            with pytest.raises(ApiError) as error:
                await api.fetch(path)
            errors.append(error.value)
        return errors

    limited, refused = run(
        call,
        lambda http: ApiClient(
            http,
            feed_server.url(""),
            platform="Demo",
            now=NOW,
            token=TOKEN,
            credential_env="DEMO_TOKEN",
        ),
    )

    # The wait is counted from the attempt's start, the clock the engine hands the collector.
    assert limited.message == "Demo: rate limited until 2026-03-02 09:32 UTC"
    assert limited.http_status == 429 and limited.retry_after == NOW + timedelta(seconds=120)
    assert refused.message == "Demo: credentials invalid or expired (check DEMO_TOKEN): HTTP 401"


@pytest.mark.parametrize(
    ("token_param", "sent_as"), [(None, "header"), ("api_key", "query")], ids=["header", "query"]
)
def test_the_token_is_sent_and_redacted_from_answers_and_errors(
    feed_server: FeedServer, token_param: str | None, sent_as: str
) -> None:
    feed_server.add_handler("/echo", echo(200))
    feed_server.add_handler("/broken", echo(500))

    async def call(api: ApiClient) -> tuple[dict[str, Any], ApiError]:
        document = await api.get_object("/echo", {"page": 2})
        with pytest.raises(ApiError) as error:
            await api.fetch("/broken", lookup="account @demo")
        return document, error.value

    document, error = run(
        call,
        lambda http: EchoingApi(
            http,
            feed_server.url(""),
            platform="Demo",
            now=NOW,
            token=TOKEN,
            token_param=token_param,
        ),
    )

    (sent,) = [r for r in feed_server.requests if r.path.startswith("/echo?")]
    if sent_as == "header":
        assert sent.headers["authorization"] == f"Bearer {TOKEN}"
        assert document["echo"]["auth"] == f"Bearer {REDACTED}"
    else:
        assert sent.query == {"page": "2", "api_key": TOKEN} and "authorization" not in sent.headers
        assert document["echo"]["query"]["api_key"] == REDACTED
    assert sent.headers["accept"] == "application/json"
    # The platform's hook read its error body, and the token it echoed never reaches the line.
    assert error.message.startswith("Demo: account @demo: refused ")
    assert TOKEN not in error.message and REDACTED in error.message
    assert error.http_status == 500


def test_an_answer_that_is_not_json_names_the_call(feed_server: FeedServer) -> None:
    feed_server.add("/page", Route(body=b"<html>maintenance</html>", content_type="text/html"))
    feed_server.add("/list", answer([1, 2]))

    async def call(api: ApiClient) -> list[str]:
        messages = []
        for attempt in (
            api.fetch("/page", what="getThing"),
            api.get_object("/list", what="things.list"),
        ):
            with pytest.raises(ApiError) as error:
                await attempt
            messages.append(error.value.message)
        return messages

    url = feed_server.url("")
    messages = run(call, lambda http: ApiClient(http, url, platform="Demo", now=NOW))

    assert messages == [
        "Demo: getThing answered HTTP 200 with something that is not JSON",
        "Demo: things.list answered HTTP 200 with something that is not a JSON object",
    ]


def test_no_answer_is_one_line_naming_the_platform(feed_server: FeedServer) -> None:
    async def call(api: ApiClient) -> tuple[ApiError, int]:
        with pytest.raises(ApiError) as error:
            await api.fetch("/anything")
        return error.value, api.requests

    # A port nothing listens on: the server's own port, once it is closed.
    with FeedServer() as closed:
        url = closed.url("")
    error, requests = run(call, lambda http: ApiClient(http, url, platform="Demo", now=NOW))

    assert error.message.startswith("Demo: ") and "\n" not in error.message
    assert error.http_status is None and requests == 1
