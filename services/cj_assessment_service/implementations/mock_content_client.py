"""In-memory stand-in for the Content Service, for fast tests that do not need the real one."""

from __future__ import annotations

import hashlib
from typing import Any

from huleedu_service_libs.errors import PayloadTooLargeError, ServiceUnavailableError


class InMemoryContentClient:
    def __init__(self, *, max_bytes: int | None = None) -> None:
        self.texts: dict[str, str] = {}
        self.metadata: dict[str, dict[str, Any] | None] = {}
        self.available = True  # flip to simulate an outage
        self.max_bytes = max_bytes
        self.store_calls = 0

    def _check_available(self) -> None:
        if not self.available:
            raise ServiceUnavailableError("The Content Service cannot be reached (in-memory outage).")

    async def store_text(self, text: str, *, metadata: dict[str, Any] | None = None) -> str:
        self._check_available()
        data = text.encode("utf-8")
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise PayloadTooLargeError("The essay text is larger than the Content Service accepts.")
        self.store_calls += 1
        # Same text → same id, as the real service de-duplicates by sha256.
        storage_id = hashlib.sha256(data).hexdigest()[:32]
        self.texts[storage_id] = text
        self.metadata.setdefault(storage_id, metadata)
        return storage_id

    async def fetch_text(self, storage_id: str) -> str | None:
        self._check_available()
        return self.texts.get(storage_id)

    async def exists(self, storage_id: str) -> bool:
        self._check_available()
        return storage_id in self.texts

    async def ping(self) -> None:
        self._check_available()
