"""First sanity checks of the routes on the in-memory repository."""

from __future__ import annotations


async def test_upload_then_download_raw_bytes(mock_client) -> None:
    body = b"\x00\x01binary\x00"
    response = await mock_client.post("/v1/content", data=body, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201
    payload = await response.get_json()
    assert len(payload["storage_id"]) == 32
    fetched = await mock_client.get(f"/v1/content/{payload['storage_id']}")
    assert fetched.status_code == 200
    assert await fetched.get_data() == body
    assert fetched.headers["Content-Type"] == "application/octet-stream"


async def test_reupload_returns_same_id_with_200(mock_client) -> None:
    first = await mock_client.post("/v1/content", data=b"same", headers={"Content-Type": "text/plain"})
    second = await mock_client.post("/v1/content", data=b"same", headers={"Content-Type": "text/plain"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert (await first.get_json())["storage_id"] == (await second.get_json())["storage_id"]


async def test_unknown_route_is_json_404(mock_client) -> None:
    response = await mock_client.get("/nope")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "NOT_FOUND"
