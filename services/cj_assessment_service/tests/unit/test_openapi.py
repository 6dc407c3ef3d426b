"""``GET /openapi.json``: an OpenAPI 3 document of every route, with the request bodies'
schemas, public even with a token. Needs no database (nothing here reaches one)."""

from __future__ import annotations

from huleedu_service_libs.testing.openapi import check_openapi_document, request_body_schema
from services.cj_assessment_service.app import create_app
from services.cj_assessment_service.tests.conftest import make_cj_settings


async def test_openapi_document_describes_every_route_without_a_token() -> None:
    settings = make_cj_settings("postgresql://unused@127.0.0.1:1/unused", api_token="cj-secret", worker_count=0)
    app = create_app(settings, configure_logs=False)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/api/v1/grade-scales")).status_code == 401  # auth is on
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        doc = await response.get_json()

    check_openapi_document(doc, app, title="cj_assessment_service")

    register = request_body_schema(doc, "/api/v1/anchors/register", "post")
    assert set(register["required"]) == {"assignment_id", "grade", "essay_text"}
    assert "anchor_label" in register["properties"]
    assert doc["paths"]["/api/v1/anchors/register"]["post"]["requestBody"]["required"] is True

    batch = request_body_schema(doc, "/api/v1/batches", "post")
    assert set(batch["required"]) == {"batch_id", "assignment_id", "essays"}
    essay_ref = batch["properties"]["essays"]["items"]["$ref"]
    assert doc["components"]["schemas"][essay_ref.rsplit("/", 1)[-1]]["required"] == ["essay_id"]

    for path, method in [
        ("/api/v1/assignments/{assignment_id}", "put"),
        ("/api/v1/grade-scales/{scale_id}", "put"),
        ("/api/v1/assignments/{assignment_id}/anchors/prune", "post"),
    ]:
        assert request_body_schema(doc, path, method)["type"] == "object"
    assert doc["paths"]["/api/v1/assignments/{assignment_id}/anchors/prune"]["post"]["requestBody"]["required"] is False
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/metrics"]["get"]["security"] == []
