"""The PostgreSQL repository on a real PostgreSQL, schema built by the alembic migrations."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.errors import ServiceUnavailableError
from huleedu_service_libs.postgres_server import PostgresServer
from services.content_service.implementations.postgres_repository import PostgresContentRepository
from services.content_service.protocols import SaveResult
from services.content_service.di import create_content_engine
from services.content_service.tests.conftest import count_rows, make_settings


async def save(repo: PostgresContentRepository, data: bytes, content_type: str = "text/plain", **kwargs) -> SaveResult:
    return await repo.save_content(
        data=data,
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
        metadata=kwargs.get("metadata"),
        correlation_id=kwargs.get("correlation_id"),
    )


async def fetch_row(database_url: str, storage_id: str) -> dict:
    engine = create_engine(make_settings(database_url).sqlalchemy_url)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT * FROM stored_content WHERE content_id = :id"), {"id": storage_id}
            )
        ).mappings().one()
    await engine.dispose()
    return dict(row)


async def test_save_then_get_round_trips_bytes_and_type(pg_repository, clean_content_database) -> None:
    data = b"Essay text\n" * 100
    result = await save(pg_repository, data, "text/plain; charset=utf-8")
    assert result.created
    assert len(result.record.storage_id) == 32
    assert result.record.content_size == len(data)
    assert result.record.sha256 == hashlib.sha256(data).hexdigest()

    blob = await pg_repository.get_content(result.record.storage_id)
    assert blob is not None
    assert blob.data == data
    assert isinstance(blob.data, bytes)
    assert blob.record == result.record
    assert await pg_repository.content_exists(result.record.storage_id) == result.record
    assert await count_rows(clean_content_database) == 1


async def test_binary_with_nul_bytes_and_large_blob_round_trip(pg_repository) -> None:
    binary = b"\x00" + os.urandom(4096) + b"\x00\x00\xff"
    large = os.urandom(3 * 1024 * 1024)
    for data in (binary, large):
        result = await save(pg_repository, data, "application/octet-stream")
        blob = await pg_repository.get_content(result.record.storage_id)
        assert blob is not None and blob.data == data


async def test_identical_bytes_and_type_are_stored_once(pg_repository, clean_content_database) -> None:
    first = await save(pg_repository, b"dedupe me")
    second = await save(pg_repository, b"dedupe me", metadata={"ignored": True})
    assert first.created and not second.created
    assert second.record == first.record
    assert await count_rows(clean_content_database) == 1


async def test_same_bytes_other_type_is_another_row(pg_repository, clean_content_database) -> None:
    first = await save(pg_repository, b"typed", "text/plain")
    second = await save(pg_repository, b"typed", "text/markdown")
    assert first.created and second.created
    assert first.record.storage_id != second.record.storage_id
    assert await count_rows(clean_content_database) == 2


async def test_metadata_correlation_id_and_created_at_are_persisted(pg_repository, clean_content_database) -> None:
    correlation_id = uuid.uuid4()
    metadata = {"essay_id": "e1", "scores": [1, 2.5], "nested": {"ok": True}, "text": "åäö"}
    result = await save(pg_repository, b"with metadata", metadata=metadata, correlation_id=correlation_id)
    row = await fetch_row(clean_content_database, result.record.storage_id)
    assert row["metadata"] == metadata
    assert row["correlation_id"] == correlation_id
    assert row["created_at"] is not None and row["created_at"].tzinfo is not None
    assert bytes(row["content_data"]) == b"with metadata"
    assert row["content_size"] == len(b"with metadata")


async def test_unknown_id_is_none(pg_repository) -> None:
    assert await pg_repository.get_content(uuid.uuid4().hex) is None
    assert await pg_repository.content_exists(uuid.uuid4().hex) is None


async def test_fifty_concurrent_identical_saves_make_one_row_and_one_id(pg_repository, clean_content_database) -> None:
    data = b"the same essay, uploaded by fifty retries at once"
    results = await asyncio.gather(*(save(pg_repository, data) for _ in range(50)))
    assert len({r.record.storage_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await count_rows(clean_content_database) == 1


async def test_fifty_concurrent_distinct_saves_make_fifty_rows(pg_repository, clean_content_database) -> None:
    payloads = [f"essay number {i}: ".encode() + os.urandom(64) for i in range(50)]
    results = await asyncio.gather(*(save(pg_repository, p, "application/octet-stream") for p in payloads))
    assert all(r.created for r in results)
    assert len({r.record.storage_id for r in results}) == 50
    assert await count_rows(clean_content_database) == 50
    for payload, result in zip(payloads, results, strict=True):
        blob = await pg_repository.get_content(result.record.storage_id)
        assert blob is not None and blob.data == payload


async def test_cancelled_calls_leave_the_pool_usable(pg_repository, clean_content_database) -> None:
    """A request cancelled mid-statement (client gone) must not poison a pooled connection."""
    stored = await save(pg_repository, b"survives cancellations")
    for delay in (0, 0.0001, 0.0005, 0.001, 0.002, 0.005) * 5:
        tasks = [
            asyncio.ensure_future(pg_repository.get_content(stored.record.storage_id)),
            asyncio.ensure_future(save(pg_repository, os.urandom(32))),
        ]
        await asyncio.sleep(delay)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Every pooled connection still works (more calls than the pool has connections).
    blobs = await asyncio.gather(*(pg_repository.get_content(stored.record.storage_id) for _ in range(40)))
    assert all(blob is not None and blob.data == b"survives cancellations" for blob in blobs)
    uploads = await asyncio.gather(*(save(pg_repository, os.urandom(64)) for _ in range(40)))
    assert all(result.created for result in uploads)


async def test_migrations_built_the_constraints_the_code_relies_on(pg_repository, clean_content_database) -> None:
    """The unique (sha256, content_type) constraint is what makes concurrent dedupe correct."""
    engine = create_engine(make_settings(clean_content_database).sqlalchemy_url)
    insert = text(
        "INSERT INTO stored_content (content_id, content_data, content_size, content_type, sha256) "
        "VALUES (:id, :data, :size, 'text/plain', :sha)"
    )
    sha = hashlib.sha256(b"x").hexdigest()
    try:
        async with engine.begin() as connection:
            await connection.execute(insert, {"id": uuid.uuid4().hex, "data": b"x", "size": 1, "sha": sha})
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert, {"id": uuid.uuid4().hex, "data": b"x", "size": 1, "sha": sha})
        with pytest.raises(IntegrityError):  # content_size must match the bytes
            async with engine.begin() as connection:
                await connection.execute(insert, {"id": uuid.uuid4().hex, "data": b"y", "size": 5, "sha": "0" * 64})
        async with engine.connect() as connection:
            indexes = (
                await connection.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'stored_content'"))
            ).scalars().all()
    finally:
        await engine.dispose()
    assert any("(created_at)" in definition for definition in indexes)
    assert await count_rows(clean_content_database) == 1


async def test_unreachable_database_is_service_unavailable() -> None:
    engine = create_engine(make_settings("postgresql://nobody@127.0.0.1:1/nothing").sqlalchemy_url)
    repo = PostgresContentRepository(engine)
    try:
        with pytest.raises(ServiceUnavailableError):
            await repo.ping()
        with pytest.raises(ServiceUnavailableError):
            await repo.get_content(uuid.uuid4().hex)
        with pytest.raises(ServiceUnavailableError):
            await save(repo, b"nowhere to go")
    finally:
        await engine.dispose()


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


async def test_too_many_connections_is_service_unavailable(postgres_server: PostgresServer, content_database_url) -> None:
    """PostgreSQL refusing a connection (53300) is an outage (503), not a bug (500)."""
    role, password = f"cs_nolimit_{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(postgres_server.admin_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT 0")
        engine = create_content_engine(make_settings(with_user(content_database_url, role, password)))
        repo = PostgresContentRepository(engine)
        try:
            with pytest.raises(ServiceUnavailableError):
                await repo.get_content(uuid.uuid4().hex)
            with pytest.raises(ServiceUnavailableError):
                await save(repo, b"refused")
            with pytest.raises(ServiceUnavailableError):
                await repo.ping()
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
