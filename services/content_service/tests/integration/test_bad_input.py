"""Bad input against a real service process on real PostgreSQL (DESIGN §3, issue 2).

Each case must answer the JSON error envelope with the right status, store nothing, and
never be a 500, HTML or a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from huleedu_service_libs.testing.processes import ServiceProcess
from services.content_service.app import create_app
from services.content_service.tests.conftest import TEST_LIMIT_BYTES, count_rows, make_settings


def assert_envelope(status: int, content_type: str, body: bytes, expected_status: int, code: str | None = None) -> dict:
    assert status == expected_status, body[:500]
    assert content_type.startswith("application/json"), content_type
    raw = body.decode("utf-8")
    assert "Traceback" not in raw and "<html" not in raw.lower() and 'File "' not in raw
    error = json.loads(raw)["error"]
    assert set(error) == {"code", "message", "correlation_id", "service", "details"}
    assert error["service"] == "content_service"
    if code is not None:
        assert error["code"] == code
    return error


def check(response: httpx.Response, expected_status: int, code: str | None = None) -> dict:
    return assert_envelope(
        response.status_code, response.headers.get("content-type", ""), response.content, expected_status, code
    )


@pytest.fixture
async def client(content_service: ServiceProcess, clean_content_database) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=content_service.base_url, timeout=10) as http:
        yield http


async def raw_request(port: int, head: bytes, body: bytes = b"", *, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Send bytes on a socket exactly as given; read one response (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        headers: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        payload = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        return int(status_line.split()[1]), headers, payload
    finally:
        writer.close()


# --- empty, too large -------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream", "application/json"])
async def test_empty_body_is_400(client, clean_content_database, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    check(await client.post("/v1/content", content=b"", headers=headers), 400, "BAD_REQUEST")
    assert await count_rows(clean_content_database) == 0


async def test_one_byte_over_the_limit_with_content_length_is_413(client, clean_content_database) -> None:
    response = await client.post("/v1/content", content=b"x" * (TEST_LIMIT_BYTES + 1))
    assert response.request.headers["content-length"] == str(TEST_LIMIT_BYTES + 1)
    check(response, 413, "PAYLOAD_TOO_LARGE")
    at_limit = await client.post("/v1/content", content=b"x" * TEST_LIMIT_BYTES)
    assert at_limit.status_code == 201
    assert await count_rows(clean_content_database) == 1


async def test_one_byte_over_the_limit_chunked_without_content_length_is_413(client, clean_content_database) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            piece = min(4096, total - sent)
            yield b"y" * piece
            sent += piece

    response = await client.post("/v1/content", content=chunks(TEST_LIMIT_BYTES + 1))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    check(response, 413, "PAYLOAD_TOO_LARGE")
    assert await count_rows(clean_content_database) == 0

    at_limit = await client.post("/v1/content", content=chunks(TEST_LIMIT_BYTES))
    assert at_limit.status_code == 201
    assert at_limit.json()["content_size"] == TEST_LIMIT_BYTES
    assert await count_rows(clean_content_database) == 1


async def test_chunked_over_the_limit_on_a_raw_socket_is_413(content_service, clean_content_database) -> None:
    chunk = b"z" * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(TEST_LIMIT_BYTES // 1024 + 1)) + b"0\r\n\r\n"
    head = (
        b"POST /v1/content HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    status, headers, payload = await raw_request(content_service.port, head, body)
    assert_envelope(status, headers.get("content-type", ""), payload, 413, "PAYLOAD_TOO_LARGE")
    assert await count_rows(clean_content_database) == 0


async def test_content_length_claiming_gigabytes_is_answered_promptly(content_service, clean_content_database) -> None:
    head = (
        b"POST /v1/content HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 5000000000\r\n\r\n"
    )
    started = time.monotonic()
    status, headers, payload = await raw_request(content_service.port, head, b"only a few bytes", timeout=5.0)
    assert time.monotonic() - started < 3.0
    assert_envelope(status, headers.get("content-type", ""), payload, 413, "PAYLOAD_TOO_LARGE")
    assert await count_rows(clean_content_database) == 0
    async with httpx.AsyncClient(base_url=content_service.base_url) as http:  # still serving
        assert (await http.get("/healthz")).status_code == 200


# --- JSON bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b'{"content": "caf\xe9 au lait"}', 400, "BAD_REQUEST", id="not-utf8"),
        pytest.param(b'{"content": "\xed\xa0\x80"}', 400, "BAD_REQUEST", id="utf8-encoded-surrogate"),
        pytest.param(b'["content", "text"]', 400, "BAD_REQUEST", id="not-object-array"),
        pytest.param(b'"content"', 400, "BAD_REQUEST", id="not-object-string"),
        pytest.param(b"42", 400, "BAD_REQUEST", id="not-object-number"),
        pytest.param(b"null", 400, "BAD_REQUEST", id="not-object-null"),
        pytest.param(b'{"content": 1}', 422, "VALIDATION_ERROR", id="content-number"),
        pytest.param(b'{"content": {"text": "x"}}', 422, "VALIDATION_ERROR", id="content-object"),
        pytest.param(b'{"content": null, "metadata": {}}', 422, "VALIDATION_ERROR", id="content-null"),
        pytest.param(b'{"content": "x", "metadata": "m"}', 422, "VALIDATION_ERROR", id="metadata-string"),
        pytest.param(b'{"content": "\\ud800"}', 400, "BAD_REQUEST", id="unpaired-surrogate"),
        pytest.param(b'{"content": "ok \\udc00 ok"}', 400, "BAD_REQUEST", id="unpaired-low-surrogate"),
        pytest.param(b'{"content": "x", "metadata": {"a": "\\ud83d"}}', 400, "BAD_REQUEST", id="metadata-surrogate"),
        pytest.param(b'{"content": "x", "metadata": {"a": "\\u0000"}}', 422, "VALIDATION_ERROR", id="metadata-nul"),
        pytest.param(b'{"content": "truncated ess', 400, "BAD_REQUEST", id="truncated"),
        pytest.param(b'{"content": "x", "metadata": {"a": [1, 2', 400, "BAD_REQUEST", id="truncated-nested"),
        pytest.param(b'{"content": "x"} trailing', 400, "BAD_REQUEST", id="trailing-garbage"),
        pytest.param(b"[" * 20_000 + b"]" * 20_000, 400, "BAD_REQUEST", id="nested-too-deep"),
        pytest.param(b'{"content": "x", "metadata": {"n": NaN}}', 400, "BAD_REQUEST", id="nan"),
        pytest.param(b'{"content": "x", "metadata": {"n": 1e400}}', 400, "BAD_REQUEST", id="float-overflow"),
    ],
)
async def test_bad_json_bodies(client, clean_content_database, body: bytes, status: int, code: str) -> None:
    check(await client.post("/v1/content", content=body, headers={"Content-Type": "application/json"}), status, code)
    assert await count_rows(clean_content_database) == 0


async def test_valid_surrogate_pair_is_fine(client, clean_content_database) -> None:
    response = await client.post(
        "/v1/content", content=b'{"content": "smile \\ud83d\\ude00"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201
    fetched = await client.get(f"/v1/content/{response.json()['storage_id']}")
    assert fetched.content.decode("utf-8") == "smile 😀"


# --- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-uuid",
        "a" * 31,
        "A" * 33,
        "z" * 32,
        str(uuid.uuid4())[:-1],
        "..%2F..%2Fetc%2Fpasswd",
        "..%2f..%2f..%2fetc%2fshadow",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "....%2F%2F....%2F%2Fetc%2Fpasswd",
        "..%5C..%5Cwindows%5Cwin.ini",
        "%00",
        "a" * 2000,
    ],
)
async def test_malformed_ids_are_400(client, bad_id: str) -> None:
    error = check(await client.get(f"/v1/content/{bad_id}"), 400, "BAD_REQUEST")
    assert len(json.dumps(error)) < 1000  # the id is echoed, but shortened
    head = await client.head(f"/v1/content/{bad_id}")
    assert head.status_code == 400 and head.content == b""


@pytest.mark.parametrize("path", [b"/v1/content/../../etc/passwd", b"/v1/content/..%2F..%2Fetc%2Fpasswd", b"/v1/content/./../x"])
async def test_path_traversal_sent_verbatim_is_a_json_error(content_service, path: bytes) -> None:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    status, headers, payload = await raw_request(content_service.port, head)
    assert status in (400, 404)
    assert_envelope(status, headers.get("content-type", ""), payload, status)


async def test_unknown_well_formed_id_is_404(client) -> None:
    unknown = uuid.uuid4()
    for form in (unknown.hex, str(unknown), unknown.hex.upper()):
        error = check(await client.get(f"/v1/content/{form}"), 404, "NOT_FOUND")
        assert error["details"] == {"storage_id": unknown.hex}


# --- binary round-trip ----------------------------------------------------------------------------


async def test_binary_with_nul_bytes_round_trips_exactly(client, clean_content_database) -> None:
    body = b"\x00" * 16 + bytes(range(256)) + os.urandom(8192) + b"\x00"
    for content_type in ("application/octet-stream", "text/plain", "image/png"):
        response = await client.post("/v1/content", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 201
        fetched = await client.get(f"/v1/content/{response.json()['storage_id']}")
        assert fetched.status_code == 200
        assert fetched.content == body
        assert fetched.headers["content-type"].startswith(content_type)
    assert await count_rows(clean_content_database) == 3


# --- auth ----------------------------------------------------------------------------------------


async def test_missing_or_wrong_token_is_401_and_stores_nothing(clean_content_database) -> None:
    app = create_app(make_settings(clean_content_database, api_token="the-token"), configure_logs=False)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for authorization in (None, "Bearer wrong", "Basic the-token", "Bearer", "the-token"):
            headers = {"Content-Type": "text/plain"}
            if authorization is not None:
                headers["Authorization"] = authorization
            response = await client.post("/v1/content", data=b"protected", headers=headers)
            assert_envelope(
                response.status_code,
                response.headers["Content-Type"],
                await response.get_data(),
                401,
                "AUTHENTICATION_REQUIRED",
            )
        assert await count_rows(clean_content_database) == 0
        ok = await client.post(
            "/v1/content", data=b"protected", headers={"Content-Type": "text/plain", "Authorization": "Bearer the-token"}
        )
        assert ok.status_code == 201
        unauthenticated_get = await client.get(f"/v1/content/{(await ok.get_json())['storage_id']}")
        assert unauthenticated_get.status_code == 401
    assert await count_rows(clean_content_database) == 1
