"""Interfaces of the Content Service, so routes can run on PostgreSQL or in memory."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ContentRecord:
    storage_id: str
    content_size: int
    content_type: str
    sha256: str


@dataclass(frozen=True)
class StoredBlob:
    record: ContentRecord
    data: bytes


@dataclass(frozen=True)
class SaveResult:
    record: ContentRecord
    created: bool  # False when identical bytes with the same type were already stored


class ContentRepositoryProtocol(Protocol):
    async def save_content(
        self,
        *,
        data: bytes,
        content_type: str,
        sha256: str,
        metadata: dict[str, Any] | None,
        correlation_id: uuid.UUID | None,
    ) -> SaveResult:
        """Store the blob, or return the existing one with the same sha256 and content type."""
        ...

    async def get_content(self, storage_id: str) -> StoredBlob | None: ...

    async def content_exists(self, storage_id: str) -> ContentRecord | None:
        """The record without the bytes (for HEAD), or None."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...
