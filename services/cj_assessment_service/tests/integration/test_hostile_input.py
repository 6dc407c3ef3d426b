"""Regressions found by attacking the running service: each was a 500 (or a hang, or an id
that should not exist) and is now a 4xx envelope that leaves nothing behind."""

from __future__ import annotations

import json

import pytest

from services.cj_assessment_service.tests.conftest import count_anchor_rows, execute_sql, put_assignment

ASSIGNMENT = "hostile-assignment-1"


def error_of(body: dict) -> dict:
    assert set(body) == {"error"}, body
    assert body["error"]["service"] == "cj_assessment_service"
    return body["error"]


async def _count(database_url: str, table: str) -> int:
    rows = await execute_sql(database_url, f"SELECT count(*) FROM {table}")
    return rows[0][0]


def _batch_body(**extra: object) -> dict:
    return {
        "batch_id": "hostile-batch",
        "assignment_id": ASSIGNMENT,
        "essays": [{"essay_id": "e1", "text": "first essay"}, {"essay_id": "e2", "text": "second essay"}],
        **extra,
    }


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("metadata_json", "fragment"),
    [
        # 900 levels used to pass json.loads and then blow the stack in the NUL check: a 500
        # whose rich traceback (with locals) then kept the event loop busy for minutes.
        (_nested(900), "nested deeper than"),
        (_nested(40), "nested deeper than"),
        (_nested(5000), "nested too deeply"),
        ('{"x": NaN}', "NaN"),
        ('{"x": -Infinity}', "Infinity"),
        ('{"x": 1e400}', "out of range"),
        ('{"x": ' + "9" * 5000 + "}", "4300 digits"),
    ],
)
async def test_unacceptable_json_is_400_and_nothing_is_stored(
    make_cj_app, clean_databases: str, metadata_json: str, fragment: str
) -> None:
    await execute_sql(clean_databases, "TRUNCATE cj_batches RESTART IDENTITY CASCADE")
    async with make_cj_app(worker_count=0) as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        raw = json.dumps(_batch_body())[:-1] + ', "metadata": ' + metadata_json + "}"
        response = await client.post("/api/v1/batches", data=raw.encode(), headers={"Content-Type": "application/json"})
        assert response.status_code == 400, await response.get_data(as_text=True)
        error = error_of(await response.get_json())
        assert error["code"] == "BAD_REQUEST"
        assert fragment in error["message"]
    assert await _count(clean_databases, "cj_batches") == 0


async def test_moderately_nested_metadata_is_still_accepted(make_cj_app, clean_databases: str) -> None:
    await execute_sql(clean_databases, "TRUNCATE cj_batches RESTART IDENTITY CASCADE")
    async with make_cj_app(worker_count=0) as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        raw = json.dumps(_batch_body())[:-1] + ', "metadata": ' + _nested(20) + "}"
        response = await client.post("/api/v1/batches", data=raw.encode(), headers={"Content-Type": "application/json"})
        assert response.status_code == 202, await response.get_data(as_text=True)
    await execute_sql(clean_databases, "TRUNCATE cj_batches RESTART IDENTITY CASCADE")


@pytest.mark.parametrize(
    "judge",
    [
        {"kind": "heuristic", "model": "nul\u0000model"},
        {"kind": "heuristic", "base_url": "http://x/\ud800"},
        {"kind": "simulated", "true_scores": {"e1\u0000": 1.0}},
    ],
)
async def test_nul_or_surrogates_in_judge_settings_are_422(make_cj_app, clean_databases: str, judge: dict) -> None:
    await execute_sql(clean_databases, "TRUNCATE cj_batches RESTART IDENTITY CASCADE")
    async with make_cj_app(worker_count=0) as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        response = await client.post("/api/v1/batches", json=_batch_body(judge=judge))
        assert response.status_code == 422, await response.get_data(as_text=True)
        error = error_of(await response.get_json())
        assert error["details"]["field"] == "judge"
    assert await _count(clean_databases, "cj_batches") == 0


@pytest.mark.parametrize("field", ["instructions", "student_prompt", "judge_rubric"])
async def test_nul_in_assignment_texts_is_422_and_nothing_is_stored(cj_client, clean_databases: str, field: str) -> None:
    body = {"grade_scale": "swedish_8_anchor", "instructions": "Write.", field: "before\u0000after"}
    response = await cj_client.put(f"/api/v1/assignments/{ASSIGNMENT}", json=body)
    assert response.status_code == 422, await response.get_data(as_text=True)
    error = error_of(await response.get_json())
    assert {problem["field"] for problem in error["details"]["errors"]} == {field}
    assert await _count(clean_databases, "assessment_assignments") == 0


async def test_nul_in_scale_description_is_422_and_nothing_is_stored(cj_client, clean_databases: str) -> None:
    response = await cj_client.put("/api/v1/grade-scales/hostile-scale", json={"grades": ["a", "b"], "description": "x\u0000"})
    assert response.status_code == 422, await response.get_data(as_text=True)
    assert error_of(await response.get_json())["code"] == "VALIDATION_ERROR"
    assert await _count(clean_databases, "grade_scales") == 0


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("PUT", "/api/v1/assignments/a%0A", "assignment_id"),
        ("PUT", "/api/v1/grade-scales/s%0A", "scale_id"),
        ("GET", "/api/v1/batches/b%0A", "batch_id"),
        ("GET", "/api/v1/assignments?course_id=c%0A", "course_id"),
    ],
)
async def test_ids_with_a_trailing_newline_are_422(cj_client, clean_databases: str, method: str, path: str, field: str) -> None:
    # re.match with "...$" accepts "a\n": such ids were stored and served.
    body = {"grade_scale": "swedish_8_anchor", "instructions": "i"} if "assignments/" in path else {"grades": ["a", "b"]}
    response = await cj_client.open(path, method=method, json=body if method == "PUT" else None)
    assert response.status_code == 422, await response.get_data(as_text=True)
    assert error_of(await response.get_json())["details"]["field"] == field
    assert await _count(clean_databases, "assessment_assignments") == 0
    assert await _count(clean_databases, "grade_scales") == 0
    assert await count_anchor_rows(clean_databases) == 0


@pytest.mark.parametrize("limit", ["²", "٣", "9" * 5000, "0", "-1", "abc"])
async def test_batch_list_limit_accepts_only_ascii_whole_numbers(cj_client, clean_databases: str, limit: str) -> None:
    # "²".isdigit() is True but int("²") raises: this used to be a 500.
    response = await cj_client.get("/api/v1/batches", query_string={"limit": limit})
    assert response.status_code == 422, await response.get_data(as_text=True)
    assert error_of(await response.get_json())["details"]["field"] == "limit"


async def test_batch_judge_url_off_the_allow_list_is_refused(make_cj_app, clean_databases: str) -> None:
    # Essays (and any API key) go wherever base_url points: a client may not choose the server.
    async with make_cj_app(judge_batch_base_urls=["http://127.0.0.1:"]) as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        response = await client.post(
            "/api/v1/batches",
            json=_batch_body(judge={"kind": "openai", "model": "m", "base_url": "http://attacker.example/v1"}),
        )
    assert response.status_code == 422, await response.get_data(as_text=True)
    error = error_of(await response.get_json())
    assert error["details"]["field"] == "judge.base_url"
    assert await _count(clean_databases, "cj_batches") == 0
