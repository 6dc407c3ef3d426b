"""The Content Service's service layer: what an upload or a download means.

Routes hand over raw request parts; this module validates them, decides how the blob
is stored, and raises typed errors that the edge turns into the JSON envelope.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from huleedu_service_libs.errors import BadRequestError, NotFoundError, ValidationError
from huleedu_service_libs.jsonb import find_unstorable_text
from huleedu_service_libs.quart_app import strict_json_loads
from services.content_service.protocols import (
    ContentRecord,
    ContentRepositoryProtocol,
    SaveResult,
    StoredBlob,
)

JSON_TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_HEX_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_DASHED_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def normalise_storage_id(raw: str) -> str:
    """32 lowercase hex characters; upper case and the dashed UUID form mean the same id."""
    if _HEX_ID.match(raw):
        return raw.lower()
    if _DASHED_UUID.match(raw):
        return raw.replace("-", "").lower()
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    raise BadRequestError(
        "Malformed storage id: expected 32 hexadecimal characters (or a dashed UUID).",
        details={"storage_id": shown},
    )


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _decode_json_upload(body: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """``{"content": "<text>", "metadata": {...}}`` → (UTF-8 bytes of content, metadata)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"JSON body is not valid UTF-8 (byte {exc.start}).") from None
    payload = strict_json_loads(text, what="JSON body")
    if not isinstance(payload, dict):
        raise BadRequestError(f"JSON body must be an object, got {type(payload).__name__}.")
    unknown = sorted(set(payload) - {"content", "metadata"})
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(unknown)}.", details={"fields": unknown})
    content = payload.get("content")
    if not isinstance(content, str):
        raise ValidationError(
            "Field 'content' is required and must be a string.",
            details={"field": "content", "got": type(content).__name__},
        )
    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(
            "Field 'metadata' must be an object.", details={"field": "metadata", "got": type(metadata).__name__}
        )
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        # json.loads accepts "\ud800"; such text has no UTF-8 form and cannot be stored as text.
        raise BadRequestError("Field 'content' contains an unpaired surrogate (not valid Unicode text).") from None
    if metadata is not None:
        _check_metadata_storable(metadata)
    return data, metadata


def _check_metadata_storable(metadata: dict[str, Any]) -> None:
    problem = find_unstorable_text(metadata)
    if problem == "nul":
        raise ValidationError("Field 'metadata' must not contain NUL characters (\\u0000).")
    if problem == "surrogate":
        raise BadRequestError("Field 'metadata' contains an unpaired surrogate.")


async def store_upload(
    repository: ContentRepositoryProtocol,
    *,
    body: bytes,
    content_type: str | None,
    correlation_id: str | None,
) -> SaveResult:
    """Store one upload: a raw body byte-for-byte, or the text of a JSON envelope."""
    content_type = (content_type or "").strip() or DEFAULT_CONTENT_TYPE
    if len(content_type) > 255:
        raise BadRequestError("Content-Type header is longer than 255 characters.")
    if not body:
        raise BadRequestError("Request body is empty; send the content to store.")
    metadata: dict[str, Any] | None = None
    if _is_json(content_type):
        body, metadata = _decode_json_upload(body)
        content_type = JSON_TEXT_CONTENT_TYPE
        if not body:
            raise BadRequestError("Field 'content' is empty; send the text to store.")
    sha256 = hashlib.sha256(body).hexdigest()
    return await repository.save_content(
        data=body,
        content_type=content_type,
        sha256=sha256,
        metadata=metadata,
        correlation_id=_as_uuid(correlation_id),
    )


async def fetch_content(repository: ContentRepositoryProtocol, raw_storage_id: str) -> StoredBlob:
    storage_id = normalise_storage_id(raw_storage_id)
    blob = await repository.get_content(storage_id)
    if blob is None:
        raise NotFoundError(f"No content with storage id {storage_id}.", details={"storage_id": storage_id})
    return blob


async def describe_content(repository: ContentRepositoryProtocol, raw_storage_id: str) -> ContentRecord:
    storage_id = normalise_storage_id(raw_storage_id)
    record = await repository.content_exists(storage_id)
    if record is None:
        raise NotFoundError(f"No content with storage id {storage_id}.", details={"storage_id": storage_id})
    return record


def _as_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
