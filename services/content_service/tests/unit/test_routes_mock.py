"""Every status code of the Content Service contract (DESIGN §3, §5), on the in-memory repository."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest

from services.content_service.app import create_app
from services.content_service.implementations.mock_repository import MockContentRepository
from services.content_service.tests.conftest import TEST_LIMIT_BYTES, make_settings

HEX32 = re.compile(r"^[0-9a-f]{32}$")
TOKEN = "s3cret-token"


async def assert_error(response, status: int, code: str) -> dict:
    """The one JSON envelope, with the expected status and code, and nothing that looks like a trace."""
    assert response.status_code == status, await response.get_data()
    assert response.headers["Content-Type"].startswith("application/json")
    raw = (await response.get_data()).decode()
    assert "Traceback" not in raw and "<html" not in raw.lower()
    error = json.loads(raw)["error"]
    assert error["code"] == code
    assert error["service"] == "content_service"
    assert error["message"]
    assert isinstance(error["details"], dict)
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]
    return error


async def upload(client, body: bytes, content_type: str | None = "text/plain", **headers: str):
    all_headers = dict(headers)
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return await client.post("/v1/content", data=body, headers=all_headers)


# --- 201 / 200: upload and de-duplication ---------------------------------------------------


async def test_raw_upload_answers_201_with_the_record(mock_client, mock_repository) -> None:
    body = b"An essay about comparative judgement.\n"
    response = await upload(mock_client, body, "text/plain", **{"X-Correlation-ID": "corr-upload-1"})
    assert response.status_code == 201
    payload = await response.get_json()
    assert HEX32.match(payload["storage_id"])
    assert payload == {
        "storage_id": payload["storage_id"],
        "content_size": len(body),
        "content_type": "text/plain",
        "sha256": hashlib.sha256(body).hexdigest(),
        "correlation_id": "corr-upload-1",
    }
    assert response.headers["Location"] == f"/v1/content/{payload['storage_id']}"
    assert mock_repository.blobs[payload["storage_id"]].data == body


async def test_upload_without_content_type_is_stored_as_octet_stream(mock_client) -> None:
    response = await upload(mock_client, b"\x00\xff\x00", content_type=None)
    assert response.status_code == 201
    storage_id = (await response.get_json())["storage_id"]
    fetched = await mock_client.get(f"/v1/content/{storage_id}")
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert await fetched.get_data() == b"\x00\xff\x00"


async def test_identical_reupload_answers_200_with_the_same_id(mock_client, mock_repository) -> None:
    first = await upload(mock_client, b"same bytes", "text/plain")
    second = await upload(mock_client, b"same bytes", "text/plain")
    assert (first.status_code, second.status_code) == (201, 200)
    assert (await first.get_json())["storage_id"] == (await second.get_json())["storage_id"]
    assert len(mock_repository.blobs) == 1


async def test_same_bytes_with_another_content_type_is_another_blob(mock_client) -> None:
    first = await upload(mock_client, b"same bytes", "text/plain")
    second = await upload(mock_client, b"same bytes", "application/octet-stream")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (await first.get_json())["storage_id"] != (await second.get_json())["storage_id"]


async def test_json_upload_stores_the_text_and_keeps_metadata(mock_client, mock_repository) -> None:
    text = "Kärlek och ömhet — 愛 🙂"
    metadata = {"essay_id": "e-17", "tags": ["a", "b"], "nested": {"n": 1}}
    response = await mock_client.post("/v1/content", json={"content": text, "metadata": metadata})
    assert response.status_code == 201
    payload = await response.get_json()
    assert payload["content_type"] == "text/plain; charset=utf-8"
    assert payload["content_size"] == len(text.encode("utf-8"))
    assert payload["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert mock_repository.metadata[payload["storage_id"]] == metadata

    fetched = await mock_client.get(f"/v1/content/{payload['storage_id']}")
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (await fetched.get_data()).decode("utf-8") == text


async def test_json_upload_without_metadata_and_with_charset_parameter(mock_client, mock_repository) -> None:
    response = await upload(mock_client, b'{"content": "plain"}', "application/json; charset=utf-8")
    assert response.status_code == 201
    storage_id = (await response.get_json())["storage_id"]
    assert mock_repository.blobs[storage_id].data == b"plain"
    assert mock_repository.metadata[storage_id] is None


async def test_json_text_and_raw_text_upload_of_the_same_text_deduplicate(mock_client) -> None:
    via_json = await mock_client.post("/v1/content", json={"content": "twice"})
    via_raw = await upload(mock_client, b"twice", "text/plain; charset=utf-8")
    assert (via_json.status_code, via_raw.status_code) == (201, 200)
    assert (await via_json.get_json())["storage_id"] == (await via_raw.get_json())["storage_id"]


# --- 200 / HEAD: download, id forms ------------------------------------------------------------


async def test_binary_with_nul_bytes_round_trips_exactly(mock_client) -> None:
    body = bytes(range(256)) * 4 + b"\x00\x00"
    response = await upload(mock_client, body, "application/octet-stream")
    storage_id = (await response.get_json())["storage_id"]
    fetched = await mock_client.get(f"/v1/content/{storage_id}")
    assert fetched.status_code == 200
    assert await fetched.get_data() == body
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("form", ["upper", "dashed", "dashed_upper"])
async def test_upper_case_and_dashed_ids_fetch_the_same_blob(mock_client, form: str) -> None:
    response = await upload(mock_client, b"id forms", "text/plain")
    storage_id = (await response.get_json())["storage_id"]
    dashed = str(uuid.UUID(hex=storage_id))
    other = {"upper": storage_id.upper(), "dashed": dashed, "dashed_upper": dashed.upper()}[form]
    fetched = await mock_client.get(f"/v1/content/{other}")
    assert fetched.status_code == 200
    assert await fetched.get_data() == b"id forms"
    head = await mock_client.head(f"/v1/content/{other}")
    assert head.status_code == 200


async def test_head_answers_existence_and_size_without_a_body(mock_client) -> None:
    body = b"x" * 1234
    storage_id = (await (await upload(mock_client, body, "text/csv")).get_json())["storage_id"]
    head = await mock_client.head(f"/v1/content/{storage_id}")
    assert head.status_code == 200
    assert head.headers["Content-Type"].startswith("text/csv")
    # (Quart's test client rebuilds the response from the body it received, which resets
    # Content-Length; the size advertised by HEAD is checked over real HTTP in test_routes_pg.)
    assert head.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert await head.get_data() == b""


async def test_head_of_unknown_id_is_404(mock_client) -> None:
    head = await mock_client.head(f"/v1/content/{uuid.uuid4().hex}")
    assert head.status_code == 404


# --- 400 / 422: bad input ------------------------------------------------------------------------


async def test_empty_body_is_400(mock_client, mock_repository) -> None:
    await assert_error(await upload(mock_client, b"", "text/plain"), 400, "BAD_REQUEST")
    await assert_error(await upload(mock_client, b"", "application/json"), 400, "BAD_REQUEST")
    assert mock_repository.blobs == {}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b'{"content": "caf\xe9"}', 400, "BAD_REQUEST", id="not-utf8"),
        pytest.param(b'["content", "x"]', 400, "BAD_REQUEST", id="array"),
        pytest.param(b'"just a string"', 400, "BAD_REQUEST", id="string"),
        pytest.param(b"null", 400, "BAD_REQUEST", id="null"),
        pytest.param(b'{"content": "trunc', 400, "BAD_REQUEST", id="truncated"),
        pytest.param(b"{", 400, "BAD_REQUEST", id="brace"),
        pytest.param(b'{"content": "\\ud800"}', 400, "BAD_REQUEST", id="unpaired-surrogate"),
        pytest.param(b'{"content": "a\\udfffb"}', 400, "BAD_REQUEST", id="lone-low-surrogate"),
        pytest.param(b'{"content": 42}', 422, "VALIDATION_ERROR", id="content-int"),
        pytest.param(b'{"content": ["a"]}', 422, "VALIDATION_ERROR", id="content-list"),
        pytest.param(b'{"content": null}', 422, "VALIDATION_ERROR", id="content-null"),
        pytest.param(b'{"metadata": {}}', 422, "VALIDATION_ERROR", id="content-missing"),
        pytest.param(b'{"content": ""}', 400, "BAD_REQUEST", id="content-empty"),
        pytest.param(b'{"content": "x", "metadata": [1]}', 422, "VALIDATION_ERROR", id="metadata-list"),
        pytest.param(b'{"content": "x", "extra": 1}', 422, "VALIDATION_ERROR", id="unknown-field"),
        pytest.param(b'{"content": "x", "metadata": {"k": "\\ud800"}}', 400, "BAD_REQUEST", id="metadata-surrogate"),
        pytest.param(b'{"content": "x", "metadata": {"k": "a\\u0000b"}}', 422, "VALIDATION_ERROR", id="metadata-nul"),
        pytest.param(b'{"content": "x", "metadata": {"k\\u0000": 1}}', 422, "VALIDATION_ERROR", id="metadata-nul-key"),
        pytest.param(
            b'{"content": "x", "metadata": {"deep": [{"k": "\\u0000"}]}}', 422, "VALIDATION_ERROR", id="metadata-nul-deep"
        ),
        pytest.param(b"[" * 50_000, 400, "BAD_REQUEST", id="nested-too-deep"),
        pytest.param(b'{"content": "x", "metadata": {"n": NaN}}', 400, "BAD_REQUEST", id="nan"),
        pytest.param(b'{"content": "x", "metadata": {"n": -Infinity}}', 400, "BAD_REQUEST", id="infinity"),
        pytest.param(b'{"content": "x", "metadata": {"n": 1e999}}', 400, "BAD_REQUEST", id="float-overflow"),
        pytest.param(b'{"content": "x", "metadata": {"n": ' + b"9" * 5000 + b"}}", 400, "BAD_REQUEST", id="huge-int"),
        pytest.param(b'\xef\xbb\xbf{"content": "bom"}', 400, "BAD_REQUEST", id="utf8-bom"),
    ],
)
async def test_bad_json_bodies(mock_client, mock_repository, body: bytes, status: int, code: str) -> None:
    await assert_error(await upload(mock_client, body, "application/json"), status, code)
    assert mock_repository.blobs == {}


async def test_metadata_with_an_escaped_backslash_u0000_text_is_fine(mock_client) -> None:
    # The six characters \u0000 (an escaped backslash) are ordinary text, not a NUL.
    response = await upload(mock_client, b'{"content": "x", "metadata": {"k": "\\\\u0000"}}', "application/json")
    assert response.status_code == 201


async def test_over_long_content_type_is_400(mock_client) -> None:
    await assert_error(await upload(mock_client, b"x", "text/" + "a" * 300), 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "bad_id",
    ["not-a-uuid", "a" * 31, "a" * 33, "g" * 32, "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "a/b"],
)
async def test_malformed_ids_are_400(mock_client, bad_id: str) -> None:
    await assert_error(await mock_client.get(f"/v1/content/{bad_id}"), 400, "BAD_REQUEST")


# --- 404 / 405 / 413 -------------------------------------------------------------------------------


async def test_unknown_well_formed_id_is_404(mock_client) -> None:
    storage_id = uuid.uuid4().hex
    error = await assert_error(await mock_client.get(f"/v1/content/{storage_id}"), 404, "NOT_FOUND")
    assert error["details"] == {"storage_id": storage_id}


async def test_unknown_route_is_404(mock_client) -> None:
    await assert_error(await mock_client.get("/nope"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"/v1/content/{'a' * 32}"),
        ("PUT", f"/v1/content/{'a' * 32}"),
        ("POST", f"/v1/content/{'a' * 32}"),
        ("GET", "/v1/content"),
        ("PATCH", "/v1/content"),
    ],
)
async def test_wrong_method_is_405(mock_client, method: str, path: str) -> None:
    await assert_error(await mock_client.open(path, method=method), 405, "METHOD_NOT_ALLOWED")


async def test_body_over_the_limit_is_413(mock_client, mock_repository) -> None:
    await assert_error(await upload(mock_client, b"x" * (TEST_LIMIT_BYTES + 1), "text/plain"), 413, "PAYLOAD_TOO_LARGE")
    await assert_error(
        await upload(mock_client, b'{"content": "' + b"x" * TEST_LIMIT_BYTES + b'"}', "application/json"),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert mock_repository.blobs == {}


async def test_body_exactly_at_the_limit_is_accepted(mock_client) -> None:
    response = await upload(mock_client, b"y" * TEST_LIMIT_BYTES, "text/plain")
    assert response.status_code == 201
    assert (await response.get_json())["content_size"] == TEST_LIMIT_BYTES


# --- 401: auth --------------------------------------------------------------------------------------


@pytest.fixture
async def auth_client(mock_repository: MockContentRepository):
    app = create_app(make_settings(api_token=TOKEN), repository=mock_repository, configure_logs=False)
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Basic {TOKEN}", "Bearer", "Bearer ", "Bearer wrong-token", f"Bearer {TOKEN}x", TOKEN],
)
async def test_missing_or_wrong_token_is_401(auth_client, mock_repository, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    await assert_error(await upload(auth_client, b"secret", "text/plain", **headers), 401, "AUTHENTICATION_REQUIRED")
    await assert_error(
        await auth_client.get(f"/v1/content/{uuid.uuid4().hex}", headers=headers), 401, "AUTHENTICATION_REQUIRED"
    )
    assert mock_repository.blobs == {}


async def test_right_token_is_accepted_and_health_needs_none(auth_client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await upload(auth_client, b"with token", "text/plain", **auth)
    assert response.status_code == 201
    storage_id = (await response.get_json())["storage_id"]
    assert (await auth_client.get(f"/v1/content/{storage_id}", headers=auth)).status_code == 200
    assert (await auth_client.get("/healthz")).status_code == 200
    assert (await auth_client.get("/metrics")).status_code == 200


# --- 503: the store is down ------------------------------------------------------------------------


async def test_unavailable_store_is_503_everywhere(mock_client, mock_repository) -> None:
    stored = (await (await upload(mock_client, b"before outage", "text/plain")).get_json())["storage_id"]
    mock_repository.available = False
    await assert_error(await upload(mock_client, b"during outage", "text/plain"), 503, "SERVICE_UNAVAILABLE")
    await assert_error(await mock_client.get(f"/v1/content/{stored}"), 503, "SERVICE_UNAVAILABLE")
    assert (await mock_client.head(f"/v1/content/{stored}")).status_code == 503
    health = await mock_client.get("/healthz")
    assert health.status_code == 503
    assert (await health.get_json())["checks"]["database"]["status"] == "unavailable"

    mock_repository.available = True
    assert (await mock_client.get(f"/v1/content/{stored}")).status_code == 200
    assert (await mock_client.get("/healthz")).status_code == 200


# --- correlation ids, health, metrics ---------------------------------------------------------------


async def test_correlation_id_is_echoed(mock_client) -> None:
    incoming = str(uuid.uuid4())
    response = await upload(mock_client, b"corr", "text/plain", **{"X-Correlation-ID": incoming})
    assert response.headers["X-Correlation-ID"] == incoming
    assert (await response.get_json())["correlation_id"] == incoming
    error = await mock_client.get("/v1/content/not-a-uuid", headers={"X-Correlation-ID": incoming})
    assert (await assert_error(error, 400, "BAD_REQUEST"))["correlation_id"] == incoming


async def test_correlation_id_is_generated_when_absent_or_unusable(mock_client) -> None:
    plain = await upload(mock_client, b"no corr", "text/plain")
    generated = plain.headers["X-Correlation-ID"]
    assert uuid.UUID(generated)
    assert (await plain.get_json())["correlation_id"] == generated

    hostile = await upload(mock_client, b"bad corr", "text/plain", **{"X-Correlation-ID": "x" * 500})
    replaced = hostile.headers["X-Correlation-ID"]
    assert replaced != "x" * 500 and uuid.UUID(replaced)

    other = await upload(mock_client, b"no corr 2", "text/plain")
    assert other.headers["X-Correlation-ID"] != generated


async def test_health_and_metrics(mock_client) -> None:
    health = await mock_client.get("/healthz")
    assert health.status_code == 200
    assert (await health.get_json())["checks"] == {"database": {"status": "ok"}}
    await upload(mock_client, b"counted", "text/plain")
    metrics = await mock_client.get("/metrics")
    assert metrics.status_code == 200
    text = (await metrics.get_data()).decode()
    assert 'http_requests_total{method="POST",route="/v1/content",service="content_service",status="201"} 1.0' in text
