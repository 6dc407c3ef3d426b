"""HTTP routes of the Content Service: parse, call the service layer, shape the response."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response, request
from quart_dishka import inject

from huleedu_service_libs.correlation import get_correlation_id
from huleedu_service_libs.quart_app import json_response
from services.content_service import content_logic
from services.content_service.protocols import ContentRecord, ContentRepositoryProtocol

content_bp = Blueprint("content", __name__, url_prefix="/v1/content")


def _record_json(record: ContentRecord) -> dict:
    return {
        "storage_id": record.storage_id,
        "content_size": record.content_size,
        "content_type": record.content_type,
        "sha256": record.sha256,
        "correlation_id": get_correlation_id(),
    }


@content_bp.post("")
@inject
async def upload_content(repository: FromDishka[ContentRepositoryProtocol]) -> Response:
    """Store a blob: the raw body as sent, or JSON ``{"content": "<text>", "metadata": {...}}``.

    201 with the record (``storage_id``, ``content_size``, ``content_type``, ``sha256``), or 200
    with the existing record when the same bytes were stored with the same type.
    """
    result = await content_logic.store_upload(
        repository,
        body=await request.get_data(cache=False),
        content_type=request.headers.get("Content-Type"),
        correlation_id=get_correlation_id(),
    )
    return json_response(
        _record_json(result.record),
        status=201 if result.created else 200,
        headers={"Location": f"/v1/content/{result.record.storage_id}"},
    )


# <path:…> so that ids with slashes (path traversal attempts) reach us and get a 400.
@content_bp.route("/<path:storage_id>", methods=["GET", "HEAD"])
@inject
async def download_content(storage_id: str, repository: FromDishka[ContentRepositoryProtocol]) -> Response:
    """The stored bytes with their content type and an ETag; HEAD gives existence and size only."""
    if request.method == "HEAD":
        # Existence and size without reading the blob from the database.
        record = await content_logic.describe_content(repository, storage_id)
        response = Response(b"", status=200, content_type=record.content_type)
        response.headers["Content-Length"] = str(record.content_size)
    else:
        blob = await content_logic.fetch_content(repository, storage_id)
        record = blob.record
        response = Response(blob.data, status=200, content_type=record.content_type)
    response.headers["ETag"] = f'"{record.sha256}"'
    # Blobs are served with whatever type the uploader claimed (text/html included): browsers
    # must not sniff them into something executable.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
