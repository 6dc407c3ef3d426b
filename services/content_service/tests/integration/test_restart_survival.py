"""Acknowledged content survives a crash of the service and of the database connections.

The incident behind issue 2: blobs lived on a container's disk and vanished on restart.
Here the service runs as a real process (``python -m services.content_service``: migrate,
then uvicorn), exactly as in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from huleedu_service_libs.postgres_server import PostgresServer
from huleedu_service_libs.testing.processes import ServiceProcess
from services.content_service.tests.conftest import content_service_process, count_rows

pytestmark = pytest.mark.slow

BINARY_TYPES = ["application/octet-stream", "image/png", "application/pdf", "application/zip", "audio/ogg"]
TEXT_TYPES = ["text/plain", "text/plain; charset=utf-8", "text/markdown", "text/csv; charset=latin-1", "text/html"]


def make_blobs(count: int, seed: int = 2) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    blobs: list[tuple[bytes, str]] = []
    for i in range(count):
        if i % 2 == 0:
            words = " ".join(rng.choice(["judgement", "essay", "åsikt", "γνώση", "論文", "score"]) for _ in range(200))
            blobs.append((f"#{i} {words}\n".encode(), rng.choice(TEXT_TYPES)))
        else:
            size = rng.choice([1, 17, 1000, 4096, 50_000])
            data = b"\x00" + rng.randbytes(size) + b"\x00" + i.to_bytes(4, "big")
            blobs.append((data, rng.choice(BINARY_TYPES)))
    return blobs


async def test_two_hundred_blobs_survive_sigkill(fresh_database: str, tmp_path) -> None:
    # An empty database: the service's own start-up migrates it.
    service = content_service_process(fresh_database, log_path=tmp_path / "service.log")
    service.start()
    try:
        blobs = make_blobs(200)
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30, limits=limits) as client:
            responses = await asyncio.gather(
                *(client.post("/v1/content", content=data, headers={"Content-Type": ctype}) for data, ctype in blobs)
            )
        assert [r.status_code for r in responses] == [201] * 200
        ids = [r.json()["storage_id"] for r in responses]
        assert len(set(ids)) == 200

        service.kill()  # SIGKILL right after the last 201: no shutdown hooks run
        assert service.process is not None and service.process.returncode == -9
        service.stop()  # closes the log file; the process is already gone
        service.start()

        async with httpx.AsyncClient(base_url=service.base_url, timeout=30, limits=limits) as client:
            fetched = await asyncio.gather(*(client.get(f"/v1/content/{storage_id}") for storage_id in ids))
        for (data, ctype), response in zip(blobs, fetched, strict=True):
            assert response.status_code == 200
            assert response.content == data
            assert response.headers["content-type"] == ctype
        assert await count_rows(fresh_database) == 200
    finally:
        service.stop()


async def terminate_backends(admin_url: str, database: str) -> int:
    connection = await asyncpg.connect(admin_url)
    try:
        rows = await connection.fetch(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await connection.close()
    return sum(1 for row in rows if row["done"])


async def test_service_recovers_when_every_database_connection_is_terminated(
    content_service: ServiceProcess, clean_content_database: str, postgres_server: PostgresServer
) -> None:
    database = urlsplit(clean_content_database).path.lstrip("/")
    async with httpx.AsyncClient(
        base_url=content_service.base_url, timeout=30, limits=httpx.Limits(max_connections=20)
    ) as client:
        stored = (await client.post("/v1/content", content=b"before the outage")).json()["storage_id"]
        # Fill the pool with several open connections, so that all of them go stale.
        warm = await asyncio.gather(*(client.get(f"/v1/content/{stored}") for _ in range(20)))
        assert {r.status_code for r in warm} == {200}

        terminated = await terminate_backends(postgres_server.admin_url, database)
        assert terminated >= 1

        failures: list[httpx.Response] = []
        for i in range(10):
            for response in (
                await client.get(f"/v1/content/{stored}"),
                await client.post("/v1/content", content=f"after the outage {i}".encode()),
                await client.head(f"/v1/content/{stored}"),
            ):
                if response.status_code >= 400:
                    failures.append(response)
        concurrent = await asyncio.gather(*(client.get(f"/v1/content/{stored}") for _ in range(20)))
        health = await client.get("/healthz")

    assert len(failures) <= 1, [(r.status_code, r.text) for r in failures]
    for response in failures:
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/json")
        assert json.loads(response.text)["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert [r.status_code for r in concurrent] == [200] * 20
    assert health.status_code == 200
    assert content_service.process is not None and content_service.process.poll() is None  # never restarted
    assert await count_rows(clean_content_database) == 11


async def test_uploads_while_connections_keep_being_terminated_fail_only_as_503(
    content_service: ServiceProcess, clean_content_database: str, postgres_server: PostgresServer
) -> None:
    """Connections killed mid-request, again and again: each upload is a 201 or a 503 envelope,
    every acknowledged upload is stored, and the service recovers as soon as the killing stops."""
    database = urlsplit(clean_content_database).path.lstrip("/")
    async with httpx.AsyncClient(
        base_url=content_service.base_url, timeout=30, limits=httpx.Limits(max_connections=20)
    ) as client:

        async def upload(i: int) -> httpx.Response:
            return await client.post("/v1/content", content=os.urandom(256) + str(i).encode())

        batch = asyncio.gather(*(upload(i) for i in range(100)))
        killed = 0
        while not batch.done():
            killed += await terminate_backends(postgres_server.admin_url, database)
            await asyncio.sleep(0.005)
        responses = await batch
        after = await asyncio.gather(*(upload(100 + i) for i in range(20)))
        acknowledged = [r.json()["storage_id"] for r in [*responses, *after] if r.status_code == 201]
        fetched = await asyncio.gather(*(client.head(f"/v1/content/{i}") for i in acknowledged))

    assert killed >= 1
    for response in responses:
        assert response.status_code in (201, 503), response.text
        if response.status_code == 503:
            assert json.loads(response.text)["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert [r.status_code for r in after] == [201] * 20
    assert [r.status_code for r in fetched] == [200] * len(acknowledged)
    assert len(acknowledged) <= await count_rows(clean_content_database) <= 120
