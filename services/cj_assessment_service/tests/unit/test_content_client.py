"""The Content Service client against a scripted transport: every failure becomes a clear error."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from huleedu_service_libs.correlation import set_correlation_id
from huleedu_service_libs.errors import (
    PayloadTooLargeError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from huleedu_service_libs.http_client import RetryPolicy, create_http_client
from services.cj_assessment_service.implementations.content_client import HttpContentClient

STORAGE_ID = "0123456789abcdef0123456789abcdef"
FAST = RetryPolicy(max_attempts=3, initial_backoff=0.0, max_backoff=0.0)


def make_client(handler: Callable[[httpx.Request], httpx.Response], token: str | None = "tok") -> HttpContentClient:
    http = create_http_client("http://content.test", bearer_token=token)
    http._transport = httpx.MockTransport(handler)  # the shared client, with a scripted transport
    return HttpContentClient(http, retry_policy=FAST, health_timeout=0.5)


def envelope(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "correlation_id": None, "service": "content_service"}}


async def test_store_sends_json_token_and_correlation_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"storage_id": STORAGE_ID, "content_size": 5})

    set_correlation_id("corr-123")
    try:
        storage_id = await make_client(handler).store_text("héllo", metadata={"kind": "anchor_essay"})
    finally:
        set_correlation_id(None)
    assert storage_id == STORAGE_ID
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/content")
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["X-Correlation-ID"] == "corr-123"
    assert json.loads(request.content) == {"content": "héllo", "metadata": {"kind": "anchor_essay"}}


async def test_existing_content_answer_200_is_fine() -> None:
    client = make_client(lambda r: httpx.Response(200, json={"storage_id": STORAGE_ID}))
    assert await client.store_text("again") == STORAGE_ID


async def test_5xx_is_retried_then_503() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, json=envelope("INTERNAL_ERROR", "boom"))

    with pytest.raises(ServiceUnavailableError) as caught:
        await make_client(handler).store_text("x")
    assert len(calls) == 3
    assert caught.value.status_code == 503
    assert caught.value.details["upstream_status"] == 500
    assert caught.value.details["upstream_message"] == "boom"


async def test_a_transient_5xx_recovers() -> None:
    answers = iter([httpx.Response(503), httpx.Response(201, json={"storage_id": STORAGE_ID})])
    assert await make_client(lambda r: next(answers)).store_text("x") == STORAGE_ID


async def test_connection_refused_is_503() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServiceUnavailableError, match="cannot be reached"):
        await make_client(handler).store_text("x")


async def test_read_timeout_is_504() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(UpstreamTimeoutError):
        await make_client(handler).exists(STORAGE_ID)


async def test_413_becomes_payload_too_large() -> None:
    client = make_client(lambda r: httpx.Response(413, json=envelope("PAYLOAD_TOO_LARGE", "too big")))
    with pytest.raises(PayloadTooLargeError) as caught:
        await client.store_text("x" * 100)
    assert caught.value.status_code == 413
    assert caught.value.details["text_bytes"] == 100


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, json={"no": "id"}),
        httpx.Response(201, text="<html>not json</html>"),
        httpx.Response(201, json={"storage_id": "../../etc/passwd"}),
        httpx.Response(400, json=envelope("BAD_REQUEST", "nope")),
        httpx.Response(401, json=envelope("AUTHENTICATION_REQUIRED", "who are you")),
    ],
)
async def test_unexpected_answers_are_502(response: httpx.Response) -> None:
    with pytest.raises(UpstreamError) as caught:
        await make_client(lambda r: response).store_text("x")
    assert caught.value.status_code == 502


async def test_401_message_names_the_token_setting() -> None:
    with pytest.raises(UpstreamError, match="CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN"):
        await make_client(lambda r: httpx.Response(401), token=None).exists(STORAGE_ID)


async def test_fetch_and_exists() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(STORAGE_ID):
            return httpx.Response(200, content="Åsa skrev".encode(), headers={"Content-Type": "text/plain"})
        return httpx.Response(404, json=envelope("NOT_FOUND", "no"))

    client = make_client(handler)
    assert await client.fetch_text(STORAGE_ID) == "Åsa skrev"
    assert await client.exists(STORAGE_ID) is True
    other = "f" * 32
    assert await client.fetch_text(other) is None
    assert await client.exists(other) is False


async def test_non_utf8_content_is_502() -> None:
    client = make_client(lambda r: httpx.Response(200, content=b"\xff\xfe"))
    with pytest.raises(UpstreamError, match="not UTF-8"):
        await client.fetch_text(STORAGE_ID)


@pytest.mark.parametrize("bad_id", ["../x", "ABC", "0123456789abcdef0123456789abcdef/..", "", "g" * 32])
async def test_malformed_storage_ids_never_reach_the_url(bad_id: str) -> None:
    client = make_client(lambda r: pytest.fail("must not send"))  # type: ignore[arg-type, return-value]
    assert await client.exists(bad_id) is False
    assert await client.fetch_text(bad_id) is None


async def test_upper_case_and_dashed_ids_are_the_same_id() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200)

    client = make_client(handler)
    assert await client.exists(STORAGE_ID.upper())
    assert await client.exists("01234567-89ab-cdef-0123-456789abcdef")
    assert paths == [f"/v1/content/{STORAGE_ID}"] * 2


async def test_ping() -> None:
    assert await make_client(lambda r: httpx.Response(200, json={"status": "ok"})).ping() is None
    with pytest.raises(ServiceUnavailableError, match="unhealthy"):
        await make_client(lambda r: httpx.Response(503)).ping()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        await make_client(refuse).ping()
