"""Registered anchors survive a restart of both services (each a real OS process).

The original incident: blobs lived on a container's disk, a restart wiped them, and the
CJ database kept pointing at nothing. Here both services run as in production
(``python -m …``: migrate, then uvicorn) and are restarted — the Content Service by
SIGKILL, the CJ service by a normal stop — before every anchor text is read back.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from huleedu_service_libs.testing.processes import ServiceProcess
from services.cj_assessment_service.tests.conftest import (
    TWELVE_GRADES,
    RunningContentService,
    anchor_text,
    count_anchor_rows,
)

pytestmark = pytest.mark.slow

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"


async def test_anchors_survive_a_restart_of_both_services(
    cj_service_process: ServiceProcess, content_service: RunningContentService, clean_databases: str
) -> None:
    async with httpx.AsyncClient(base_url=cj_service_process.base_url, timeout=30) as client:
        scale = await client.put("/api/v1/grade-scales/twelve_step", json={"grades": TWELVE_GRADES})
        assert scale.status_code == 201
        assignment = await client.put(
            f"/api/v1/assignments/{ASSIGNMENT}", json={"grade_scale": "twelve_step", "instructions": "Essay."}
        )
        assert assignment.status_code == 201
        registered = {}
        for grade in TWELVE_GRADES:
            response = await client.post(
                "/api/v1/anchors/register",
                json={"assignment_id": ASSIGNMENT, "grade": grade, "essay_text": anchor_text(grade)},
            )
            assert response.status_code == 201, response.text
            registered[grade] = response.json()

    content_service.process.kill()  # a crash: no shutdown hooks
    content_service.process.stop()  # closes its log file; the process is already gone
    # Both come back at once (the CJ service turns healthy when the Content Service is).
    await asyncio.gather(
        asyncio.to_thread(content_service.process.start), asyncio.to_thread(cj_service_process.restart)
    )

    async with httpx.AsyncClient(base_url=cj_service_process.base_url, timeout=30) as client:
        listed = (await client.get(f"/api/v1/assignments/{ASSIGNMENT}/anchors")).json()
        assert [(a["grade"], a["anchor_id"], a["storage_id"]) for a in listed["anchors"]] == [
            (grade, registered[grade]["anchor_id"], registered[grade]["storage_id"]) for grade in TWELVE_GRADES
        ]
        for grade in TWELVE_GRADES:
            fetched = await client.get(f"/api/v1/anchors/{registered[grade]['anchor_id']}")
            assert fetched.status_code == 200
            assert fetched.json()["essay_text"] == anchor_text(grade)
        verified = (await client.post(f"/api/v1/assignments/{ASSIGNMENT}/anchors/verify")).json()
        assert verified["summary"] == {"total": 12, "ok": 12, "missing": 0}
        # Registering again after the restart changes nothing.
        again = await client.post(
            "/api/v1/anchors/register",
            json={"assignment_id": ASSIGNMENT, "grade": "A", "essay_text": anchor_text("A")},
        )
        assert (again.status_code, again.json()["status"]) == (200, "unchanged")
    assert await count_anchor_rows(clean_databases) == 12

