"""Auth (a configured token guards every route but health and metrics), health and metrics."""

from __future__ import annotations

from services.cj_assessment_service.tests.conftest import put_assignment


async def test_token_required_when_configured(make_cj_app) -> None:
    async with make_cj_app(api_token="cj-secret") as client:
        for path in ("/api/v1/grade-scales", "/api/v1/assignments"):
            response = await client.get(path)
            assert response.status_code == 401
            assert (await response.get_json())["error"]["code"] == "AUTHENTICATION_REQUIRED"
        wrong = await client.get("/api/v1/assignments", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        register = await client.post("/api/v1/anchors/register", json={})
        assert register.status_code == 401

        ok = await client.get("/api/v1/grade-scales", headers={"Authorization": "Bearer cj-secret"})
        assert ok.status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_health_checks_database_and_content_service(cj_client) -> None:
    response = await cj_client.get("/healthz")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["checks"] == {"database": {"status": "ok"}, "content_service": {"status": "ok"}}


async def test_health_reports_an_unreachable_database(make_cj_app) -> None:
    async with make_cj_app(database_url="postgresql://nobody@127.0.0.1:9/none") as client:
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert (await response.get_json())["checks"]["database"]["status"] == "unavailable"
        listed = await client.get("/api/v1/assignments")
        assert listed.status_code == 503
        assert (await listed.get_json())["error"]["code"] == "SERVICE_UNAVAILABLE"


async def test_metrics_count_requests(cj_client) -> None:
    await put_assignment(cj_client, "metrics-assignment", "swedish_8_anchor")
    text = await (await cj_client.get("/metrics")).get_data(as_text=True)
    assert 'route="/api/v1/assignments/<assignment_id>"' in text
