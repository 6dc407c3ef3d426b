"""PostgreSQL content repository (SQLAlchemy async engine and pool, asyncpg driver).

The engine (``di.create_content_engine``) is an autocommit one: every operation here is a
single statement, which PostgreSQL commits before it answers, so a blob is durable once
``save_content`` returns and the 201 that follows is never a lie.

Connections come from the SQLAlchemy engine's pool (checked for liveness on checkout) and
go back to it before each method returns. The statements are plain SQL run on the asyncpg
connection itself: this is the service's hot path, and SQLAlchemy's execution layer
(AsyncConnection, execution context, result wrapping) costs ~0.1-0.2 ms of CPU per
statement, a quarter of what a whole GET costs (scripts/benchmarks/content_service_load.py).
The schema itself is defined by ``models_db`` and built by the alembic migrations.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from huleedu_service_libs.database import database_errors_as_unavailable, is_connection_problem
from services.content_service.protocols import ContentRecord, SaveResult, StoredBlob

# One statement decides the race between concurrent identical uploads: the unique
# (sha256, content_type) constraint lets exactly one insert through; the others wait for
# it to commit and then insert nothing.
_INSERT = """
INSERT INTO stored_content
    (content_id, content_data, content_size, content_type, sha256, metadata, correlation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT ON CONSTRAINT uq_stored_content_sha256_type DO NOTHING
RETURNING content_id
"""
_SELECT_EXISTING = """
SELECT content_id, content_size, content_type, sha256 FROM stored_content
WHERE sha256 = $1 AND content_type = $2
"""
_SELECT_RECORD = "SELECT content_id, content_size, content_type, sha256 FROM stored_content WHERE content_id = $1"
_SELECT_BLOB = (
    "SELECT content_id, content_size, content_type, sha256, content_data FROM stored_content WHERE content_id = $1"
)


def _record(row: Any) -> ContentRecord:
    return ContentRecord(row[0], row[1], row[2], row[3].strip())


class PostgresContentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _run(self, method: str, query: str, *args: Any) -> Any:
        """One statement on a pooled asyncpg connection (``method``: fetchval or fetchrow).

        The connection is checked out of the engine's pool as a raw DBAPI connection (one
        greenlet hop each way, rather than the three of an ``AsyncConnection``). If it
        turns out dead (server restart, pg_terminate_backend), it is discarded and the
        statement runs once more on a fresh one: every statement here is safe to repeat
        (a repeated INSERT meets its own row and inserts nothing).
        """
        async with database_errors_as_unavailable():
            for attempt in (1, 2):
                raw = await self._engine.raw_connection()
                try:
                    return await getattr(raw.driver_connection, method)(query, *args)
                except asyncio.CancelledError:
                    # Cancelled mid-statement (e.g. the client went away): the connection's
                    # protocol state is unknown, so it is closed rather than pooled again.
                    await greenlet_spawn(raw.invalidate)
                    raise
                except Exception as exc:
                    if attempt == 2 or not is_connection_problem(exc):
                        raise
                    await greenlet_spawn(raw.invalidate, exc)
                finally:
                    await greenlet_spawn(raw.close)
        raise AssertionError("unreachable")

    async def save_content(
        self,
        *,
        data: bytes,
        content_type: str,
        sha256: str,
        metadata: dict[str, Any] | None,
        correlation_id: uuid.UUID | None,
    ) -> SaveResult:
        metadata_json = json.dumps(metadata, ensure_ascii=False) if metadata is not None else None
        inserted_id = await self._run(
            "fetchval", _INSERT, uuid.uuid4().hex, data, len(data), content_type, sha256, metadata_json, correlation_id
        )
        if inserted_id is None:
            # The row that won is committed (ON CONFLICT waited for it), so this sees it.
            existing = await self._run("fetchrow", _SELECT_EXISTING, sha256, content_type)
            return SaveResult(record=_record(existing), created=False)
        return SaveResult(record=ContentRecord(inserted_id, len(data), content_type, sha256), created=True)

    async def get_content(self, storage_id: str) -> StoredBlob | None:
        row = await self._run("fetchrow", _SELECT_BLOB, storage_id)
        if row is None:
            return None
        return StoredBlob(record=_record(row), data=row[4])

    async def content_exists(self, storage_id: str) -> ContentRecord | None:
        row = await self._run("fetchrow", _SELECT_RECORD, storage_id)
        return _record(row) if row is not None else None

    async def ping(self) -> None:
        async with database_errors_as_unavailable(), self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
