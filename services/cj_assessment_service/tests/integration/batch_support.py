"""Helpers shared by the batch tests: the fake OpenAI judge, fixtures, polling and SQL checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.cj_assessment_service.tests.conftest import execute_sql
from tests.fakes.fake_openai_server import FakeOpenAIServer

ASSIGNMENT = "batch-assignment-1"
GRADES = ["F", "E", "D", "D+", "C", "C+", "B", "A"]  # swedish_8_anchor
TERMINAL = ("completed", "failed", "cancelled")

# Worker settings for fast tests: short lease and poll, small rounds.
FAST_WORKER = {
    "worker_count": 1,
    "worker_poll_interval_seconds": 0.2,
    "worker_lease_seconds": 3.0,
    "worker_retry_seconds": 0.5,
    "judge_concurrency": 4,
    "judge_max_retries": 2,
    "judge_timeout_seconds": 10.0,
}


@pytest.fixture(scope="module")
def fake_judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake_judge(fake_judge_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The module's fake OpenAI server, reset to its default judge (the longer essay wins)."""
    from tests.fakes.fake_openai_server import LongerEssayWins

    fake_judge_server.reset()
    fake_judge_server.set_default(LongerEssayWins())
    fake_judge_server.latency_s = 0.0
    yield fake_judge_server
    fake_judge_server.reset()


def openai_judge(server: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    return {"kind": "openai", "base_url": server.base_url, "model": "fake-judge-1", **extra}


def student_text(index: int) -> str:
    """Essays whose length (hence the fake judge's verdict) grows with the index."""
    return f"Student essay number {index}. " + " ".join(f"word{k}" for k in range(30 + 9 * index)) + "."


def graded_anchor_text(grade: str) -> str:
    """Anchor texts whose length grows with the grade, so the fake judge (longer wins) orders them."""
    rank = GRADES.index(grade)
    return f"Anchor essay graded {grade}. " + " ".join(f"term{k}" for k in range(40 + 25 * rank)) + "."


def essays(count: int, prefix: str = "student") -> list[dict[str, Any]]:
    return [{"essay_id": f"{prefix}-{i:03d}", "text": student_text(i)} for i in range(count)]


async def setup_assignment(client: Any, *, anchors: list[str] = GRADES, assignment_id: str = ASSIGNMENT) -> dict[str, dict]:
    """An assignment on the Swedish scale with one registered anchor per given grade."""
    response = await client.put(
        f"/api/v1/assignments/{assignment_id}",
        json={
            "grade_scale": "swedish_8_anchor",
            "instructions": "Write an argumentative essay about school uniforms.",
            "student_prompt": "Should schools require uniforms?",
            "judge_rubric": "Argument, structure, language.",
        },
    )
    assert response.status_code in (200, 201), await _text(response)
    registered = {}
    for grade in anchors:
        response = await client.post(
            "/api/v1/anchors/register",
            json={"assignment_id": assignment_id, "grade": grade, "essay_text": graded_anchor_text(grade), "anchor_label": f"anchor-{grade}"},
        )
        assert response.status_code in (200, 201), await _text(response)
        registered[grade] = await _json(response)
    return registered


async def _text(response: Any) -> str:
    if isinstance(response, httpx.Response):
        return response.text
    return await response.get_data(as_text=True)


async def _json(response: Any) -> Any:
    if isinstance(response, httpx.Response):
        return response.json()
    return await response.get_json()


async def wait_for_batch(client: Any, batch_id: str, *, until: Any = TERMINAL, timeout: float = 60.0) -> dict[str, Any]:
    """Poll GET /batches/<id> until ``until(batch)`` (or its status is in ``until``)."""
    deadline = time.monotonic() + timeout
    batch: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/batches/{batch_id}")
        assert response.status_code == 200, await _text(response)
        batch = await _json(response)
        done = until(batch) if callable(until) else batch["status"] in until
        if done:
            return batch
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not get there in {timeout}s; last seen: {batch}")


async def comparison_rows(database_url: str, batch_id: str) -> list[Any]:
    return await execute_sql(
        database_url,
        "SELECT c.round, c.slot, c.status, c.first_item, c.second_item, c.winner_item, c.winner_position "
        "FROM cj_comparisons c JOIN cj_batches b ON b.id = c.batch_pk WHERE b.batch_id = :b ORDER BY c.round, c.slot",
        {"b": batch_id},
    )


async def batch_counters(database_url: str, batch_id: str) -> tuple[int, int, int]:
    rows = await execute_sql(
        database_url,
        "SELECT comparisons_done, comparisons_failed, max_comparisons FROM cj_batches WHERE batch_id = :b",
        {"b": batch_id},
    )
    return tuple(rows[0])  # type: ignore[return-value]


async def assert_log_matches_counters(database_url: str, batch_id: str) -> list[Any]:
    """Every slot unique, nothing queued, counters equal to the log: nothing was counted twice."""
    rows = await comparison_rows(database_url, batch_id)
    slots = [(r[0], r[1]) for r in rows]
    assert len(slots) == len(set(slots))
    done, failed, _ = await batch_counters(database_url, batch_id)
    assert sum(1 for r in rows if r[2] == "done") == done
    assert sum(1 for r in rows if r[2] == "failed") == failed
    assert not [r for r in rows if r[2] == "queued"]
    return rows
