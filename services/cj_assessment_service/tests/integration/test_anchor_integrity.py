"""The incident, replayed: blobs vanish from the store; verify finds them, prune repairs.

The Content Service runs as a real process; its blobs are deleted straight from its
database (what the lost container disk did), not through any API.
"""

from __future__ import annotations

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.settings import to_asyncpg_url
from services.cj_assessment_service.implementations.mock_content_client import InMemoryContentClient
from services.cj_assessment_service.implementations.postgres_repository import PostgresAnchorRepository
from services.cj_assessment_service.tests.conftest import (
    TWELVE_GRADES,
    RunningContentService,
    anchor_text,
    count_anchor_rows,
    put_assignment,
    put_scale,
    wipe_blobs,
)

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"
LOST = {"E-", "E+", "D", "C-", "C+", "A"}  # the grades whose texts are lost


async def register_twelve(client, version: int = 1) -> dict[str, dict]:
    anchors = {}
    for grade in TWELVE_GRADES:
        response = await client.post(
            "/api/v1/anchors/register",
            json={
                "assignment_id": ASSIGNMENT,
                "grade": grade,
                "essay_text": anchor_text(grade, version),
                "anchor_label": f"anchor-{grade}",
            },
        )
        assert response.status_code in (200, 201), await response.get_data(as_text=True)
        anchors[grade] = await response.get_json()
    return anchors


async def test_incident_replayed(cj_client, clean_databases: str, content_service: RunningContentService) -> None:
    await put_scale(cj_client, "twelve_step", TWELVE_GRADES)
    await put_assignment(cj_client, ASSIGNMENT, "twelve_step")
    anchors = await register_twelve(cj_client)

    healthy = await (await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/verify")).get_json()
    assert healthy["summary"] == {"total": 12, "ok": 12, "missing": 0}

    lost_ids = [anchors[grade]["storage_id"] for grade in LOST]
    assert await wipe_blobs(content_service.database_url, lost_ids) == len(LOST)

    # verify names every missing anchor by label and storage id.
    response = await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/verify")
    assert response.status_code == 200
    report = await response.get_json()
    assert report["summary"] == {"total": 12, "ok": 6, "missing": 6}
    assert {(a["anchor_label"], a["storage_id"]) for a in report["missing"]} == {
        (f"anchor-{grade}", anchors[grade]["storage_id"]) for grade in LOST
    }
    by_grade = {a["grade"]: a["content_status"] for a in report["anchors"]}
    assert by_grade == {grade: "missing" if grade in LOST else "ok" for grade in TWELVE_GRADES}
    assert [a["grade"] for a in report["anchors"]] == TWELVE_GRADES  # scale order

    # A fetch of a lost anchor says what happened and what to do.
    lost_fetch = await cj_client.get(f"/api/v1/anchors/{anchors['A']['anchor_id']}")
    assert lost_fetch.status_code == 404
    assert "prune" in (await lost_fetch.get_json())["error"]["message"]

    # prune --dry-run reports, changes nothing.
    dry = await (await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/prune?dry_run=true")).get_json()
    assert dry["dry_run"] is True
    assert dry["deleted"] == []
    assert {a["anchor_label"] for a in dry["would_delete"]} == {f"anchor-{g}" for g in LOST}
    assert await count_anchor_rows(clean_databases) == 12
    dry_body = await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/prune", json={"dry_run": True})
    assert (await dry_body.get_json())["summary"]["deleted"] == 0
    assert await count_anchor_rows(clean_databases) == 12

    # prune leaves only the healthy references.
    pruned = await (await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/prune?dry_run=false")).get_json()
    assert pruned["dry_run"] is False
    assert {(a["anchor_label"], a["storage_id"]) for a in pruned["deleted"]} == {
        (f"anchor-{grade}", anchors[grade]["storage_id"]) for grade in LOST
    }
    assert pruned["summary"]["remaining"] == 6
    assert await count_anchor_rows(clean_databases) == 6
    listed = await (await cj_client.get(f"/api/v1/assignments/{ASSIGNMENT}/anchors")).get_json()
    assert {a["grade"] for a in listed["anchors"]} == set(TWELVE_GRADES) - LOST
    after = await (await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/verify")).get_json()
    assert after["summary"] == {"total": 6, "ok": 6, "missing": 0}

    # Re-registration restores the full set: the lost ones are created again, the rest unchanged.
    restored = await register_twelve(cj_client)
    assert {grade: body["status"] for grade, body in restored.items()} == {
        grade: "created" if grade in LOST else "unchanged" for grade in TWELVE_GRADES
    }
    assert await count_anchor_rows(clean_databases) == 12
    final = await (await cj_client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/verify")).get_json()
    assert final["summary"] == {"total": 12, "ok": 12, "missing": 0}
    for grade, body in restored.items():
        fetched = await (await cj_client.get(f"/api/v1/anchors/{body['anchor_id']}")).get_json()
        assert fetched["essay_text"] == anchor_text(grade)


async def test_verify_and_prune_refuse_to_guess_when_the_content_service_is_down(make_cj_app) -> None:
    async with make_cj_app() as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        for grade in ("F", "C", "A"):
            response = await client.post(
                "/api/v1/anchors/register",
                json={"assignment_id": ASSIGNMENT, "grade": grade, "essay_text": anchor_text(grade)},
            )
            assert response.status_code == 201
    async with make_cj_app(content_service_url="http://127.0.0.1:9") as down:
        for path in ("verify", "prune?dry_run=false"):
            response = await down.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/{path}")
            assert response.status_code == 503
            assert (await response.get_json())["error"]["code"] == "SERVICE_UNAVAILABLE"
        listed = await (await down.get(f"/api/v1/assignments/{ASSIGNMENT}/anchors")).get_json()
        assert len(listed["anchors"]) == 3  # nothing pruned on an outage


async def test_prune_keeps_an_anchor_re_registered_meanwhile(make_cj_app, clean_databases: str) -> None:
    """delete_unchanged matches the storage id too, so a repaired anchor survives a stale prune."""
    content = InMemoryContentClient()
    async with make_cj_app(content_client=content) as client:
        await put_assignment(client, ASSIGNMENT, "swedish_8_anchor")
        body = {"assignment_id": ASSIGNMENT, "grade": "B", "essay_text": anchor_text("B")}
        first = await (await client.post("/api/v1/anchors/register", json=body)).get_json()
        content.texts.clear()  # lost

        engine = create_engine(to_asyncpg_url(clean_databases))
        repository = PostgresAnchorRepository(engine)
        stale = await repository.list_for_assignment(ASSIGNMENT)  # what a prune saw as missing
        # ... meanwhile the anchor is re-registered with new text:
        repaired = await (
            await client.post("/api/v1/anchors/register", json={**body, "essay_text": anchor_text("B", 2)})
        ).get_json()
        assert repaired["status"] == "updated" and repaired["anchor_id"] == first["anchor_id"]
        assert await repository.delete_unchanged(stale) == []
        await engine.dispose()
        assert await count_anchor_rows(clean_databases) == 1
