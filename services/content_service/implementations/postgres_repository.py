"""PostgreSQL content repository (SQLAlchemy async + asyncpg).

Each method opens its own session and commits explicitly before returning, so a blob is
durable once ``save_content`` returns: the 201 that follows is never a lie.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from huleedu_service_libs.database import database_errors_as_unavailable
from services.content_service.models_db import StoredContent
from services.content_service.protocols import ContentRecord, SaveResult, StoredBlob

_RECORD_COLUMNS = (
    StoredContent.content_id,
    StoredContent.content_size,
    StoredContent.content_type,
    StoredContent.sha256,
)


class PostgresContentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def save_content(
        self,
        *,
        data: bytes,
        content_type: str,
        sha256: str,
        metadata: dict[str, Any] | None,
        correlation_id: uuid.UUID | None,
    ) -> SaveResult:
        new_id = uuid.uuid4().hex
        # One statement decides the race between concurrent identical uploads: the
        # unique (sha256, content_type) constraint lets exactly one insert through.
        insert_stmt = (
            insert(StoredContent)
            .values(
                content_id=new_id,
                content_data=data,
                content_size=len(data),
                content_type=content_type,
                sha256=sha256,
                content_metadata=metadata,
                correlation_id=correlation_id,
            )
            .on_conflict_do_nothing(constraint="uq_stored_content_sha256_type")
            .returning(StoredContent.content_id)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            inserted_id = (await session.execute(insert_stmt)).scalar_one_or_none()
            if inserted_id is None:
                existing = (
                    await session.execute(
                        select(*_RECORD_COLUMNS).where(
                            StoredContent.sha256 == sha256, StoredContent.content_type == content_type
                        )
                    )
                ).one()
                await session.commit()
                return SaveResult(record=ContentRecord(*existing), created=False)
            await session.commit()
        return SaveResult(
            record=ContentRecord(inserted_id, len(data), content_type, sha256),
            created=True,
        )

    async def get_content(self, storage_id: str) -> StoredBlob | None:
        stmt = select(*_RECORD_COLUMNS, StoredContent.content_data).where(StoredContent.content_id == storage_id)
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = (await session.execute(stmt)).one_or_none()
        if row is None:
            return None
        return StoredBlob(record=ContentRecord(*row[:4]), data=bytes(row[4]))

    async def content_exists(self, storage_id: str) -> ContentRecord | None:
        stmt = select(*_RECORD_COLUMNS).where(StoredContent.content_id == storage_id)
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = (await session.execute(stmt)).one_or_none()
        return ContentRecord(*row) if row is not None else None

    async def ping(self) -> None:
        async with database_errors_as_unavailable(), self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
