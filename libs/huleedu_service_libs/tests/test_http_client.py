"""The shared HTTP client: retries on what is worth retrying, honours Retry-After, forwards ids."""

from __future__ import annotations

import time

import httpx
import pytest

from huleedu_service_libs.correlation import set_correlation_id
from huleedu_service_libs.http_client import RetryPolicy, create_http_client, parse_retry_after, request_with_retries

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


def scripted_transport(statuses: list[int | Exception], seen: list[httpx.Request], headers: dict | None = None):
    answers = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers=headers or {}, json={"n": len(seen)})

    return httpx.MockTransport(handler)


async def test_retries_5xx_then_succeeds() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=scripted_transport([503, 502, 200], seen), base_url="http://x") as client:
        response = await request_with_retries(client, "GET", "/thing", policy=FAST)
    assert response.status_code == 200
    assert len(seen) == 3


async def test_gives_up_after_bounded_attempts_and_returns_last_answer() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=scripted_transport([500, 500, 500, 200], seen), base_url="http://x") as client:
        response = await request_with_retries(client, "GET", "/thing", policy=FAST)
    assert response.status_code == 500
    assert len(seen) == 3


async def test_connection_errors_are_retried_then_raised() -> None:
    seen: list[httpx.Request] = []
    error = httpx.ConnectError("refused")
    async with httpx.AsyncClient(transport=scripted_transport([error, error, error], seen), base_url="http://x") as client:
        with pytest.raises(httpx.ConnectError):
            await request_with_retries(client, "GET", "/thing", policy=FAST)
    assert len(seen) == 3


async def test_client_errors_are_not_retried() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=scripted_transport([404, 200], seen), base_url="http://x") as client:
        response = await request_with_retries(client, "GET", "/thing", policy=FAST)
    assert response.status_code == 404
    assert len(seen) == 1


async def test_429_waits_for_retry_after() -> None:
    seen: list[httpx.Request] = []
    transport = scripted_transport([429, 200], seen, headers={"Retry-After": "0.3"})
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        started = time.monotonic()
        response = await request_with_retries(client, "GET", "/thing", policy=FAST)
        waited = time.monotonic() - started
    assert response.status_code == 200
    assert waited >= 0.29  # the backoff alone would be ~0.01 s


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 10) == pytest.approx(10.0)


async def test_client_forwards_correlation_id_and_token() -> None:
    seen: list[httpx.Request] = []
    client = create_http_client("http://x", bearer_token="s3cret")
    client._transport = scripted_transport([200], seen)  # keep the event hooks and headers of the real factory
    set_correlation_id("corr-42")
    try:
        await client.get("/thing")
    finally:
        set_correlation_id(None)
        await client.aclose()
    assert seen[0].headers["X-Correlation-ID"] == "corr-42"
    assert seen[0].headers["Authorization"] == "Bearer s3cret"
