"""Grade scales (built-in read-only, custom via PUT) and assignments (create/replace, get, list)."""

from __future__ import annotations

import pytest

from services.cj_assessment_service.tests.conftest import TWELVE_GRADES, anchor_text, put_assignment, put_scale

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"


async def test_builtin_scales_are_listed_and_read_only(cj_client, clean_databases: str) -> None:
    listed = await (await cj_client.get("/api/v1/grade-scales")).get_json()
    by_id = {scale["scale_id"]: scale for scale in listed["grade_scales"]}
    assert by_id["swedish_8_anchor"]["grades"] == ["F", "E", "D", "D+", "C", "C+", "B", "A"]
    assert by_id["eng5_np_legacy_9_step"]["below_lowest"] == "F"
    assert by_id["eng5_np_national_9_step"]["grades"] == [str(i) for i in range(1, 10)]
    assert by_id["eng5_np_national_9_step"]["below_lowest"] == "0"
    assert all(scale["builtin"] for scale in by_id.values())

    one = await cj_client.get("/api/v1/grade-scales/eng5_np_legacy_9_step")
    assert one.status_code == 200
    assert (await one.get_json())["grades"][0] == "F+"

    refused = await cj_client.put("/api/v1/grade-scales/swedish_8_anchor", json={"grades": ["X", "Y"]})
    assert refused.status_code == 409
    assert "read-only" in (await refused.get_json())["error"]["message"]


async def test_custom_scale_create_update_get(cj_client, clean_databases: str) -> None:
    created = await cj_client.put(
        "/api/v1/grade-scales/twelve_step", json={"grades": TWELVE_GRADES, "description": "Twelve"}
    )
    assert created.status_code == 201
    body = await created.get_json()
    assert (body["status"], body["builtin"], body["grades"]) == ("created", False, TWELVE_GRADES)

    same = await cj_client.put(
        "/api/v1/grade-scales/twelve_step", json={"grades": TWELVE_GRADES, "description": "Twelve"}
    )
    assert (same.status_code, (await same.get_json())["status"]) == (200, "unchanged")

    updated = await cj_client.put(
        "/api/v1/grade-scales/twelve_step", json={"grades": [*TWELVE_GRADES, "A+"], "below_lowest": "U"}
    )
    assert (updated.status_code, (await updated.get_json())["status"]) == (200, "updated")
    fetched = await (await cj_client.get("/api/v1/grade-scales/twelve_step")).get_json()
    assert fetched["grades"][-1] == "A+" and fetched["below_lowest"] == "U" and fetched["description"] == ""
    listed = await (await cj_client.get("/api/v1/grade-scales")).get_json()
    assert "twelve_step" in {scale["scale_id"] for scale in listed["grade_scales"]}

    missing = await cj_client.get("/api/v1/grade-scales/nope")
    assert missing.status_code == 404
    assert "swedish_8_anchor" in (await missing.get_json())["error"]["details"]["available"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grades": ["A"]}, "grades"),
        ({"grades": []}, "grades"),
        ({"grades": ["A", "B", "A"]}, "grades"),
        ({"grades": ["A", " "]}, "grades.1"),
        ({"grades": "A,B"}, "grades"),
        ({"grades": ["A", 2]}, "grades.1"),
        ({"grades": ["A", "B"], "below_lowest": "A"}, "grades"),
        ({"grades": ["A", "B"], "below_lowest": ""}, "below_lowest"),
        ({"grades": ["A", "B"], "colour": "red"}, "colour"),
        ({}, "grades"),
    ],
)
async def test_custom_scale_validation(cj_client, clean_databases: str, body: dict, field: str) -> None:
    response = await cj_client.put("/api/v1/grade-scales/my_scale", json=body)
    assert response.status_code == 422, await response.get_data(as_text=True)
    error = (await response.get_json())["error"]
    named = {p["field"] for p in error["details"].get("errors", [])} or {error["details"].get("field")}
    assert field in named


async def test_scale_cannot_drop_grades_that_anchors_carry(cj_client, clean_databases: str) -> None:
    await put_scale(cj_client, "abc", ["C", "B", "A"])
    await put_assignment(cj_client, ASSIGNMENT, "abc")
    response = await cj_client.post(
        "/api/v1/anchors/register", json={"assignment_id": ASSIGNMENT, "grade": "B", "essay_text": anchor_text("B")}
    )
    assert response.status_code == 201
    refused = await cj_client.put("/api/v1/grade-scales/abc", json={"grades": ["C", "A"]})
    assert refused.status_code == 409
    assert (await refused.get_json())["error"]["details"]["grades_in_use"] == ["B"]
    # Adding grades is fine.
    assert (await cj_client.put("/api/v1/grade-scales/abc", json={"grades": ["C", "B", "A", "A+"]})).status_code == 200


async def test_assignment_create_update_get_list(cj_client, clean_databases: str) -> None:
    body = {
        "grade_scale": "swedish_8_anchor",
        "instructions": "Argue for or against school uniforms.",
        "student_prompt": "Should pupils wear uniforms?",
        "judge_rubric": "Prefer the clearer argument.",
        "course_id": "ENG5",
    }
    created = await cj_client.put(f"/api/v1/assignments/{ASSIGNMENT}", json=body)
    assert created.status_code == 201
    created_body = await created.get_json()
    assert created_body["status"] == "created"
    assert {k: created_body[k] for k in body} == body
    assert created_body["anchor_count"] == 0

    same = await cj_client.put(f"/api/v1/assignments/{ASSIGNMENT}", json=body)
    assert (same.status_code, (await same.get_json())["status"]) == (200, "unchanged")

    # PUT replaces: omitted optional fields become null.
    replaced = await cj_client.put(
        f"/api/v1/assignments/{ASSIGNMENT}",
        json={"grade_scale": "eng5_np_national_9_step", "instructions": "New instructions."},
    )
    assert replaced.status_code == 200
    replaced_body = await replaced.get_json()
    assert replaced_body["status"] == "updated"
    assert replaced_body["grade_scale"] == "eng5_np_national_9_step"
    assert replaced_body["student_prompt"] is None and replaced_body["course_id"] is None

    fetched = await (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}")).get_json()
    assert fetched["instructions"] == "New instructions."

    await put_assignment(cj_client, "b-assignment", "swedish_8_anchor", course_id="ENG6")
    await put_assignment(cj_client, "a-assignment", "swedish_8_anchor", course_id="ENG6")
    listed = await (await cj_client.get("/api/v1/assignments")).get_json()
    assert [a["assignment_id"] for a in listed["assignments"]] == [ASSIGNMENT, "a-assignment", "b-assignment"]
    by_course = await (await cj_client.get("/api/v1/assignments?course_id=ENG6")).get_json()
    assert [a["assignment_id"] for a in by_course["assignments"]] == ["a-assignment", "b-assignment"]


async def test_changing_the_scale_of_an_assignment_with_anchors_is_409(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    response = await cj_client.post(
        "/api/v1/anchors/register", json={"assignment_id": ASSIGNMENT, "grade": "C", "essay_text": anchor_text("C")}
    )
    assert response.status_code == 201
    refused = await cj_client.put(
        f"/api/v1/assignments/{ASSIGNMENT}", json={"grade_scale": "eng5_np_national_9_step", "instructions": "x"}
    )
    assert refused.status_code == 409
    error = (await refused.get_json())["error"]
    assert error["code"] == "CONFLICT"
    assert error["details"]["anchor_count"] == 1
    assert "Delete its anchors first" in error["message"]
    unchanged = await (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}")).get_json()
    assert unchanged["grade_scale"] == "swedish_8_anchor"
    # Other fields may still change while the scale stays.
    ok = await cj_client.put(
        f"/api/v1/assignments/{ASSIGNMENT}", json={"grade_scale": "swedish_8_anchor", "instructions": "Edited."}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grade_scale": "swedish_8_anchor"}, "instructions"),
        ({"grade_scale": "swedish_8_anchor", "instructions": "   "}, "instructions"),
        ({"grade_scale": 8, "instructions": "x"}, "grade_scale"),
        ({"grade_scale": "swedish_8_anchor", "instructions": "x", "student_prompt": ""}, "student_prompt"),
        ({"grade_scale": "swedish_8_anchor", "instructions": "x", "judge_rubric": 1}, "judge_rubric"),
        ({"grade_scale": "swedish_8_anchor", "instructions": "x", "course_id": "a b"}, "course_id"),
        ({"grade_scale": "no_such_scale", "instructions": "x"}, "grade_scale"),
    ],
)
async def test_assignment_validation(cj_client, clean_databases: str, body: dict, field: str) -> None:
    response = await cj_client.put(f"/api/v1/assignments/{ASSIGNMENT}", json=body)
    assert response.status_code == 422, await response.get_data(as_text=True)
    error = (await response.get_json())["error"]
    named = {p["field"] for p in error["details"].get("errors", [])} or {error["details"].get("field")}
    assert field in named
    assert (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}")).status_code == 404
