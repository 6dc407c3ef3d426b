"""Bad input gets a JSON envelope that says what is wrong, and nothing half-written."""

from __future__ import annotations

import json

import pytest

from services.cj_assessment_service.tests.conftest import (
    CONTENT_LIMIT_BYTES,
    RunningContentService,
    anchor_text,
    count_anchor_rows,
    execute_sql,
    put_assignment,
)

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"
REGISTER = "/api/v1/anchors/register"


def error_of(body: dict) -> dict:
    assert set(body) == {"error"}, body
    assert body["error"]["service"] == "cj_assessment_service"
    return body["error"]


def fields_named(error: dict) -> set[str]:
    return {problem["field"] for problem in error["details"].get("errors", [])}


@pytest.fixture
async def client_with_assignment(cj_client):
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    return cj_client


@pytest.mark.parametrize("body", [[], [1, 2], "text", 42, None, True])
async def test_non_object_json_is_422(client_with_assignment, body, clean_databases: str) -> None:
    response = await client_with_assignment.post(
        REGISTER, data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = error_of(await response.get_json())
    assert error["code"] == "VALIDATION_ERROR"
    assert "JSON object" in error["message"]
    assert await count_anchor_rows(clean_databases) == 0


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(b"", "application/json"), (b"{not json", "application/json"), (b"\xff\xfe{}", "application/json")],
)
async def test_malformed_bodies_are_400(client_with_assignment, raw: bytes, content_type: str) -> None:
    response = await client_with_assignment.post(REGISTER, data=raw, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert error_of(await response.get_json())["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("body", "expected_fields"),
    [
        ({"assignment_id": ASSIGNMENT, "grade": 5, "essay_text": "x"}, {"grade"}),
        ({"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": ["x"]}, {"essay_text"}),
        ({"assignment_id": 1, "grade": "A", "essay_text": "x"}, {"assignment_id"}),
        ({"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": "x", "anchor_label": 7}, {"anchor_label"}),
        ({"assignment_id": ASSIGNMENT, "grade": "  ", "essay_text": "x"}, {"grade"}),
        ({"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": " \n\t "}, {"essay_text"}),
        ({"assignment_id": "", "grade": "A", "essay_text": "x"}, {"assignment_id"}),
        ({"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": "x", "anchor_label": "   "}, {"anchor_label"}),
        ({"grade": "A"}, {"assignment_id", "essay_text"}),
        ({"assignment_id": ASSIGNMENT, "grade": "", "essay_text": ""}, {"grade", "essay_text"}),
        ({"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": "x", "grde": "A"}, {"grde"}),
        ({"assignment_id": "../../etc", "grade": "A", "essay_text": "x"}, {"assignment_id"}),
        ({"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": "bad \ud800 surrogate"}, {"essay_text"}),
    ],
)
async def test_wrong_types_blank_and_missing_fields_are_422_naming_them(
    client_with_assignment, body: dict, expected_fields: set[str], clean_databases: str
) -> None:
    response = await client_with_assignment.post(
        REGISTER, data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = error_of(await response.get_json())
    assert error["code"] == "VALIDATION_ERROR"
    assert fields_named(error) == expected_fields
    for field in expected_fields:
        assert field in error["message"]
    assert await count_anchor_rows(clean_databases) == 0


async def test_unknown_grade_is_422_listing_valid_grades(client_with_assignment, clean_databases: str) -> None:
    response = await client_with_assignment.post(
        REGISTER, json={"assignment_id": ASSIGNMENT, "grade": "A+", "essay_text": anchor_text("A+")}
    )
    assert response.status_code == 422
    error = error_of(await response.get_json())
    assert error["details"]["valid_grades"] == ["F", "E", "D", "D+", "C", "C+", "B", "A"]
    assert "F, E, D, D+, C, C+, B, A" in error["message"]
    assert await count_anchor_rows(clean_databases) == 0


async def test_below_lowest_grade_is_not_an_anchor_grade(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, "legacy", "eng5_np_legacy_9_step")
    response = await cj_client.post(REGISTER, json={"assignment_id": "legacy", "grade": "F", "essay_text": "x"})
    assert response.status_code == 422
    assert "below-lowest" in error_of(await response.get_json())["message"]


async def test_unknown_assignment_is_404(cj_client, clean_databases: str, content_service: RunningContentService) -> None:
    response = await cj_client.post(
        REGISTER, json={"assignment_id": "no-such-assignment", "grade": "A", "essay_text": anchor_text("A")}
    )
    assert response.status_code == 404
    assert error_of(await response.get_json())["code"] == "NOT_FOUND"
    for path in ("/api/v1/assignments/no-such-assignment/anchors", "/api/v1/assignments/no-such-assignment"):
        assert (await cj_client.get(path)).status_code == 404
    assert (await cj_client.post("/api/v1/assignments/no-such-assignment/anchors/verify")).status_code == 404
    # Nothing was sent to the Content Service either.
    assert await execute_sql(content_service.database_url, "SELECT content_id FROM stored_content") == []


async def test_essay_over_the_content_limit_is_413_and_nothing_written(
    client_with_assignment, clean_databases: str
) -> None:
    too_long = "word " * (CONTENT_LIMIT_BYTES // 5 + 100)
    response = await client_with_assignment.post(
        REGISTER, json={"assignment_id": ASSIGNMENT, "grade": "B", "essay_text": too_long}
    )
    assert response.status_code == 413
    error = error_of(await response.get_json())
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert "Content Service" in error["message"]
    assert await count_anchor_rows(clean_databases) == 0


async def test_content_service_down_is_503_and_nothing_written(make_cj_app, clean_databases: str) -> None:
    async with make_cj_app() as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
    async with make_cj_app(content_service_url="http://127.0.0.1:9") as down:
        response = await down.post(
            REGISTER, json={"assignment_id": ASSIGNMENT, "grade": "B", "essay_text": anchor_text("B")}
        )
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("application/json")
        error = error_of(await response.get_json())
        assert error["code"] == "SERVICE_UNAVAILABLE"
        assert "Content Service" in error["message"]
        assert error["correlation_id"] == response.headers["X-Correlation-ID"]
        health = await down.get("/healthz")
        assert health.status_code == 503
        assert (await health.get_json())["checks"]["content_service"]["status"] == "unavailable"
    assert await count_anchor_rows(clean_databases) == 0


async def test_wrong_content_service_token_is_a_clear_502(make_cj_app, clean_databases: str) -> None:
    async with make_cj_app(content_service_token="not-the-token") as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        response = await client.post(
            REGISTER, json={"assignment_id": ASSIGNMENT, "grade": "B", "essay_text": anchor_text("B")}
        )
        assert response.status_code == 502
        error = error_of(await response.get_json())
        assert error["code"] == "UPSTREAM_ERROR"
        assert "CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN" in error["message"]
    assert await count_anchor_rows(clean_databases) == 0


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/anchors/abc", "anchor_id"),
        ("GET", "/api/v1/anchors/0", "anchor_id"),
        ("DELETE", "/api/v1/anchors/-3", "anchor_id"),
        ("GET", "/api/v1/assignments/has%20space", "assignment_id"),
        ("GET", "/api/v1/assignments/" + "x" * 129, "assignment_id"),
        ("GET", "/api/v1/grade-scales/bad!id", "scale_id"),
        ("POST", f"/api/v1/assignments/{ASSIGNMENT}/anchors/prune?dry_run=maybe", "dry_run"),
        ("GET", "/api/v1/anchors/1?include_text=perhaps", "include_text"),
    ],
)
async def test_bad_path_and_query_values_are_422(client_with_assignment, method: str, path: str, field: str) -> None:
    response = await client_with_assignment.open(path, method=method)
    assert response.status_code == 422
    error = error_of(await response.get_json())
    assert error["details"]["field"] == field


async def test_prune_body_must_be_a_boolean(client_with_assignment, clean_databases: str) -> None:
    response = await client_with_assignment.post(
        f"/api/v1/assignments/{ASSIGNMENT}/anchors/prune", json={"dry_run": "yes"}
    )
    assert response.status_code == 422
    assert fields_named(error_of(await response.get_json())) == {"dry_run"}


async def test_unknown_route_and_method_are_json(cj_client) -> None:
    missing = await cj_client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert error_of(await missing.get_json())["code"] == "NOT_FOUND"
    wrong_method = await cj_client.delete("/api/v1/assignments")
    assert wrong_method.status_code == 405
    assert error_of(await wrong_method.get_json())["code"] == "METHOD_NOT_ALLOWED"


async def test_request_over_our_own_limit_is_413_before_anything_happens(make_cj_app, clean_databases: str) -> None:
    async with make_cj_app(max_request_bytes=4096) as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        response = await client.post(
            REGISTER, json={"assignment_id": ASSIGNMENT, "grade": "B", "essay_text": "x" * 10_000}
        )
        assert response.status_code == 413
        assert error_of(await response.get_json())["code"] == "PAYLOAD_TOO_LARGE"
    assert await count_anchor_rows(clean_databases) == 0
