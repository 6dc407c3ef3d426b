"""In-memory content repository for fast route tests (DESIGN §3)."""

from __future__ import annotations

import uuid
from typing import Any

from services.content_service.protocols import ContentRecord, SaveResult, StoredBlob


class MockContentRepository:
    def __init__(self) -> None:
        self.blobs: dict[str, StoredBlob] = {}
        self.metadata: dict[str, dict[str, Any] | None] = {}
        self.available = True  # flip to simulate a database outage

    def _check_available(self) -> None:
        if not self.available:
            from huleedu_service_libs.errors import ServiceUnavailableError

            raise ServiceUnavailableError("Content store is unavailable (mock outage).")

    async def save_content(
        self,
        *,
        data: bytes,
        content_type: str,
        sha256: str,
        metadata: dict[str, Any] | None,
        correlation_id: uuid.UUID | None,
    ) -> SaveResult:
        self._check_available()
        for blob in self.blobs.values():
            if blob.record.sha256 == sha256 and blob.record.content_type == content_type:
                return SaveResult(record=blob.record, created=False)
        record = ContentRecord(uuid.uuid4().hex, len(data), content_type, sha256)
        self.blobs[record.storage_id] = StoredBlob(record=record, data=bytes(data))
        self.metadata[record.storage_id] = metadata
        return SaveResult(record=record, created=True)

    async def get_content(self, storage_id: str) -> StoredBlob | None:
        self._check_available()
        return self.blobs.get(storage_id)

    async def content_exists(self, storage_id: str) -> ContentRecord | None:
        self._check_available()
        blob = self.blobs.get(storage_id)
        return blob.record if blob else None

    async def ping(self) -> None:
        self._check_available()
