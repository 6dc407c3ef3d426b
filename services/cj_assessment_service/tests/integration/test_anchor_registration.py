"""Idempotent anchor registration against a real Content Service process and PostgreSQL.

The incident: registration always inserted, so five uploads of the same 12 anchors
left 60 rows. Now the key (assignment_id, anchor_label, grade_scale) is unique and
registration upserts on it.
"""

from __future__ import annotations

import asyncio
import uuid

from services.cj_assessment_service.tests.conftest import (
    TWELVE_GRADES,
    RunningContentService,
    anchor_text,
    count_anchor_rows,
    execute_sql,
    put_assignment,
    put_scale,
)

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"


async def register(client, grade: str, essay_text: str, *, assignment_id: str = ASSIGNMENT, **extra):
    return await client.post(
        "/api/v1/anchors/register",
        json={"assignment_id": assignment_id, "grade": grade, "essay_text": essay_text, **extra},
    )


async def test_twelve_anchors_registered_again_stay_twelve(cj_client, clean_databases: str) -> None:
    await put_scale(cj_client, "twelve_step", TWELVE_GRADES, description="12 grades")
    await put_assignment(cj_client, ASSIGNMENT, "twelve_step")

    first = [await register(cj_client, grade, anchor_text(grade)) for grade in TWELVE_GRADES]
    assert [r.status_code for r in first] == [201] * 12
    first_bodies = [await r.get_json() for r in first]
    assert {b["status"] for b in first_bodies} == {"created"}
    assert [b["anchor_label"] for b in first_bodies] == TWELVE_GRADES  # label defaults to the grade
    assert await count_anchor_rows(clean_databases) == 12

    # Same texts again: nothing changes, same ids and storage ids.
    again = [await register(cj_client, grade, anchor_text(grade)) for grade in TWELVE_GRADES]
    assert [r.status_code for r in again] == [200] * 12
    again_bodies = [await r.get_json() for r in again]
    assert {b["status"] for b in again_bodies} == {"unchanged"}
    assert [(b["anchor_id"], b["storage_id"]) for b in again_bodies] == [
        (b["anchor_id"], b["storage_id"]) for b in first_bodies
    ]
    assert await count_anchor_rows(clean_databases) == 12

    # New texts: updated in place, new storage ids, still 12 rows.
    updated = [await register(cj_client, grade, anchor_text(grade, version=2)) for grade in TWELVE_GRADES]
    assert [r.status_code for r in updated] == [200] * 12
    updated_bodies = [await r.get_json() for r in updated]
    assert {b["status"] for b in updated_bodies} == {"updated"}
    assert [b["anchor_id"] for b in updated_bodies] == [b["anchor_id"] for b in first_bodies]
    for old, new in zip(first_bodies, updated_bodies, strict=True):
        assert new["storage_id"] != old["storage_id"]
    assert await count_anchor_rows(clean_databases) == 12

    listed = await (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}/anchors")).get_json()
    assert [a["grade"] for a in listed["anchors"]] == TWELVE_GRADES
    assert [a["storage_id"] for a in listed["anchors"]] == [b["storage_id"] for b in updated_bodies]
    fetched = await (await cj_client.get(f"/api/v1/anchors/{first_bodies[3]['anchor_id']}")).get_json()
    assert fetched["essay_text"] == anchor_text(TWELVE_GRADES[3], version=2)


async def test_builtin_scale_anchors_twice(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, "eng5-legacy", "eng5_np_legacy_9_step")
    grades = ["F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A"]
    for _ in range(2):
        for grade in grades:
            response = await register(cj_client, grade, anchor_text(grade), assignment_id="eng5-legacy")
            assert response.status_code in (200, 201)
    assert await count_anchor_rows(clean_databases, "eng5-legacy") == 9


async def test_fifty_concurrent_registrations_of_one_key(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    text = anchor_text("C+")
    responses = await asyncio.gather(*(register(cj_client, "C+", text) for _ in range(50)))
    bodies = [await r.get_json() for r in responses]
    assert all(r.status_code in (200, 201) for r in responses), bodies
    statuses = [b["status"] for b in bodies]
    assert statuses.count("created") == 1
    assert statuses.count("unchanged") == 49
    assert len({b["anchor_id"] for b in bodies}) == 1
    assert len({b["storage_id"] for b in bodies}) == 1
    assert await count_anchor_rows(clean_databases) == 1


async def test_fifty_concurrent_registrations_with_different_texts(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    responses = await asyncio.gather(
        *(register(cj_client, "B", anchor_text("B", version=i), anchor_label="B-anchor") for i in range(50))
    )
    bodies = [await r.get_json() for r in responses]
    assert all(r.status_code in (200, 201) for r in responses), bodies
    assert [b["status"] for b in bodies].count("created") == 1
    assert await count_anchor_rows(clean_databases) == 1
    # The row points at the text of whichever registration wrote last, and that text exists.
    (row,) = await execute_sql(clean_databases, "SELECT id, text_storage_id FROM anchor_essay_references")
    fetched = await (await cj_client.get(f"/api/v1/anchors/{row.id}")).get_json()
    assert fetched["storage_id"] == row.text_storage_id
    assert fetched["essay_text"].startswith("Anchor essay for grade B")


async def test_labels_allow_several_anchors_per_grade(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    for label, grade in [("B-2", "B"), ("A-1", "A"), ("B-1", "B"), ("F-1", "F"), ("C+1", "C+")]:
        response = await register(cj_client, grade, anchor_text(label), anchor_label=label)
        assert response.status_code == 201
    # Re-grading a label updates it in place.
    regraded = await register(cj_client, "C", anchor_text("C+1"), anchor_label="C+1")
    assert (regraded.status_code, (await regraded.get_json())["status"]) == (200, "updated")

    listed = await (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}/anchors")).get_json()
    # Grade order of the scale (F … A), then label.
    assert [(a["grade"], a["anchor_label"]) for a in listed["anchors"]] == [
        ("F", "F-1"),
        ("C", "C+1"),
        ("B", "B-1"),
        ("B", "B-2"),
        ("A", "A-1"),
    ]
    assignment = await (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}")).get_json()
    assert assignment["anchor_count"] == 5


async def test_correlation_id_and_token_reach_the_content_service(
    cj_client, clean_databases: str, content_service: RunningContentService
) -> None:
    # The session's Content Service requires a token: every registration proves forwarding.
    assert content_service.token
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    correlation_id = str(uuid.uuid4())
    response = await cj_client.post(
        "/api/v1/anchors/register",
        json={"assignment_id": ASSIGNMENT, "grade": "E", "essay_text": anchor_text("E")},
        headers={"X-Correlation-ID": correlation_id},
    )
    assert response.status_code == 201
    assert response.headers["X-Correlation-ID"] == correlation_id
    storage_id = (await response.get_json())["storage_id"]
    (row,) = await execute_sql(
        content_service.database_url,
        "SELECT correlation_id, metadata FROM stored_content WHERE content_id = :id",
        {"id": storage_id},
    )
    assert str(row.correlation_id) == correlation_id
    assert row.metadata["assignment_id"] == ASSIGNMENT
    assert row.metadata["kind"] == "anchor_essay"


async def test_delete_anchor(cj_client, clean_databases: str) -> None:
    await put_assignment(cj_client, ASSIGNMENT, "swedish_8_anchor")
    anchor_id = (await (await register(cj_client, "D", anchor_text("D"))).get_json())["anchor_id"]
    deleted = await cj_client.delete(f"/api/v1/anchors/{anchor_id}")
    assert deleted.status_code == 200
    assert (await deleted.get_json())["deleted"]["anchor_id"] == anchor_id
    assert (await cj_client.delete(f"/api/v1/anchors/{anchor_id}")).status_code == 404
    assert (await cj_client.get(f"/api/v1/anchors/{anchor_id}")).status_code == 404
    assert await count_anchor_rows(clean_databases) == 0
    # Registering again creates a fresh row.
    assert (await register(cj_client, "D", anchor_text("D"))).status_code == 201
