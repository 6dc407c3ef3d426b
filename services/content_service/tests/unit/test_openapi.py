"""``GET /openapi.json``: an OpenAPI 3 document of every route, public even with a token."""

from __future__ import annotations

from huleedu_service_libs.testing.openapi import check_openapi_document
from services.content_service.app import create_app
from services.content_service.implementations.mock_repository import MockContentRepository
from services.content_service.tests.conftest import make_settings


async def test_openapi_document_describes_every_route_without_a_token() -> None:
    app = create_app(make_settings(api_token="s3cret"), repository=MockContentRepository(), configure_logs=False)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/v1/content/" + "0" * 32)).status_code == 401  # auth is on
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        doc = await response.get_json()

    check_openapi_document(doc, app, title="content_service")
    assert {"post"} <= set(doc["paths"]["/v1/content"])
    assert {"get"} <= set(doc["paths"]["/v1/content/{storage_id}"])
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
