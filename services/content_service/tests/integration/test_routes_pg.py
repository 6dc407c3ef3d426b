"""Routes on a real PostgreSQL: in-process (Quart test client) and over HTTP against a real process."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

import httpx
from sqlalchemy import text

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.testing.processes import ServiceProcess
from services.content_service.tests.conftest import count_rows, make_settings


async def stored_row(database_url: str, storage_id: str) -> dict:
    engine = create_engine(make_settings(database_url).sqlalchemy_url)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT content_type, metadata, correlation_id, content_size FROM stored_content WHERE content_id = :id"),
                {"id": storage_id},
            )
        ).mappings().one()
    await engine.dispose()
    return dict(row)


# --- in-process app on PostgreSQL --------------------------------------------------------------


async def test_upload_dedupe_and_download(pg_client, clean_content_database) -> None:
    body = b"A durable essay.\n" * 50
    first = await pg_client.post("/v1/content", data=body, headers={"Content-Type": "text/markdown"})
    second = await pg_client.post("/v1/content", data=body, headers={"Content-Type": "text/markdown"})
    assert (first.status_code, second.status_code) == (201, 200)
    storage_id = (await first.get_json())["storage_id"]
    assert (await second.get_json())["storage_id"] == storage_id

    fetched = await pg_client.get(f"/v1/content/{storage_id}")
    assert fetched.status_code == 200
    assert await fetched.get_data() == body
    assert fetched.headers["Content-Type"].startswith("text/markdown")
    assert fetched.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert (await pg_client.head(f"/v1/content/{storage_id}")).status_code == 200
    assert await count_rows(clean_content_database) == 1


async def test_json_upload_keeps_metadata_and_correlation_id(pg_client, clean_content_database) -> None:
    correlation_id = str(uuid.uuid4())
    metadata = {"essay_id": "e-42", "rubric": {"max": 6}, "tags": ["å", "ä"]}
    response = await pg_client.post(
        "/v1/content",
        json={"content": "Text via JSON ✓", "metadata": metadata},
        headers={"X-Correlation-ID": correlation_id},
    )
    assert response.status_code == 201
    payload = await response.get_json()
    assert payload["correlation_id"] == correlation_id
    row = await stored_row(clean_content_database, payload["storage_id"])
    assert row == {
        "content_type": "text/plain; charset=utf-8",
        "metadata": metadata,
        "correlation_id": uuid.UUID(correlation_id),
        "content_size": len("Text via JSON ✓".encode()),
    }
    fetched = await pg_client.get(f"/v1/content/{payload['storage_id']}")
    assert (await fetched.get_data()).decode("utf-8") == "Text via JSON ✓"


async def test_non_uuid_correlation_id_is_echoed_but_not_stored(pg_client, clean_content_database) -> None:
    response = await pg_client.post(
        "/v1/content", data=b"free-form corr", headers={"Content-Type": "text/plain", "X-Correlation-ID": "job-17.a"}
    )
    assert response.status_code == 201
    assert response.headers["X-Correlation-ID"] == "job-17.a"
    row = await stored_row(clean_content_database, (await response.get_json())["storage_id"])
    assert row["correlation_id"] is None


async def test_id_forms_unknown_and_malformed_ids(pg_client) -> None:
    response = await pg_client.post("/v1/content", data=b"\x00id\x00", headers={"Content-Type": "application/x-thing"})
    storage_id = (await response.get_json())["storage_id"]
    for form in (storage_id, storage_id.upper(), str(uuid.UUID(hex=storage_id)), str(uuid.UUID(hex=storage_id)).upper()):
        fetched = await pg_client.get(f"/v1/content/{form}")
        assert fetched.status_code == 200
        assert await fetched.get_data() == b"\x00id\x00"
    assert (await pg_client.get(f"/v1/content/{uuid.uuid4().hex}")).status_code == 404
    assert (await pg_client.head(f"/v1/content/{uuid.uuid4()}")).status_code == 404
    assert (await pg_client.get("/v1/content/not-a-uuid")).status_code == 400


async def test_health_checks_the_database(pg_client) -> None:
    health = await pg_client.get("/healthz")
    assert health.status_code == 200
    assert (await health.get_json())["checks"]["database"] == {"status": "ok"}


async def test_health_and_routes_are_503_when_the_database_is_unreachable() -> None:
    from services.content_service.app import create_app

    app = create_app(make_settings("postgresql://nobody@127.0.0.1:1/nothing"), configure_logs=False)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        health = await client.get("/healthz")
        assert health.status_code == 503
        upload = await client.post("/v1/content", data=b"x", headers={"Content-Type": "text/plain"})
        assert upload.status_code == 503
        assert (await upload.get_json())["error"]["code"] == "SERVICE_UNAVAILABLE"
        fetched = await client.get(f"/v1/content/{uuid.uuid4().hex}")
        assert fetched.status_code == 503


# --- a real service process over HTTP -------------------------------------------------------------


async def test_head_over_http_advertises_size_without_a_body(content_service: ServiceProcess, clean_content_database) -> None:
    body = os.urandom(5000)
    async with httpx.AsyncClient(base_url=content_service.base_url, timeout=10) as client:
        storage_id = (await client.post("/v1/content", content=body)).json()["storage_id"]
        head = await client.head(f"/v1/content/{storage_id.upper()}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(body))
        assert head.headers["content-type"] == "application/octet-stream"
        assert head.content == b""
        fetched = await client.get(f"/v1/content/{uuid.UUID(hex=storage_id)}")
        assert fetched.content == body


async def test_fifty_concurrent_identical_uploads_over_http(content_service: ServiceProcess, clean_content_database) -> None:
    body = "The same essay, posted fifty times at once. ".encode() * 60
    async with httpx.AsyncClient(
        base_url=content_service.base_url, timeout=30, limits=httpx.Limits(max_connections=50)
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/content", content=body, headers={"Content-Type": "text/plain"}) for _ in range(50))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201], statuses
    assert len({r.json()["storage_id"] for r in responses}) == 1
    assert await count_rows(clean_content_database) == 1


async def test_fifty_concurrent_distinct_uploads_over_http(content_service: ServiceProcess, clean_content_database) -> None:
    bodies = [f"essay {i} ".encode() + os.urandom(512) for i in range(50)]
    async with httpx.AsyncClient(
        base_url=content_service.base_url, timeout=30, limits=httpx.Limits(max_connections=50)
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/content", content=b, headers={"Content-Type": "application/octet-stream"}) for b in bodies)
        )
        assert [r.status_code for r in responses] == [201] * 50
        ids = [r.json()["storage_id"] for r in responses]
        assert len(set(ids)) == 50
        fetched = await asyncio.gather(*(client.get(f"/v1/content/{i}") for i in ids))
    assert [f.content for f in fetched] == bodies
    assert await count_rows(clean_content_database) == 50
