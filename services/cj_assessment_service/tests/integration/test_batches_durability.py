"""Batches survive crashes: a SIGKILLed CJ process, a restarted Content Service, lost leases.

* The CJ service runs as a real process (``python -m services.cj_assessment_service``),
  is killed with SIGKILL mid-batch and started again: the batch completes, and the
  comparison log shows every slot once with counters equal to the log.
* The Content Service is down while a worker prepares a batch, and restarted again
  while the batch compares: the batch waits, then completes.
* Leases: while one worker holds a batch nobody else can claim it; once it expires
  another worker takes over and the first one can no longer write anything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.settings import to_asyncpg_url
from huleedu_service_libs.testing.processes import ServiceProcess, free_port
from services.cj_assessment_service.implementations.batch_repository import PostgresBatchRepository
from services.cj_assessment_service.protocols_batches import ComparisonOutcome, LeaseLostError
from services.cj_assessment_service.tests.conftest import RunningContentService, cj_service_env
from services.cj_assessment_service.tests.integration.batch_support import (  # noqa: F401 (fixtures)
    ASSIGNMENT,
    FAST_WORKER,
    assert_log_matches_counters,
    batch_counters,
    essays,
    fake_judge,
    fake_judge_server,
    openai_judge,
    setup_assignment,
    wait_for_batch,
)
from tests.fakes.fake_openai_server import FakeOpenAIServer

pytestmark = pytest.mark.slow


def _worker_env() -> dict[str, str]:
    prefix = "CJ_ASSESSMENT_SERVICE_"
    return {f"{prefix}{key.upper()}": str(value) for key, value in FAST_WORKER.items()}


async def test_sigkill_mid_batch_then_restart_completes_without_double_counting(
    clean_databases: str, content_service: RunningContentService, fake_judge: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_judge.latency_s = 0.15
    port = free_port()
    cj = ServiceProcess(
        "services.cj_assessment_service",
        env=cj_service_env(clean_databases, content_service, port, **_worker_env()),
        port=port,
        log_path=tmp_path / "cj.log",
    )
    cj.start()
    try:
        async with httpx.AsyncClient(base_url=cj.base_url, timeout=30) as client:
            await setup_assignment(client, anchors=["E", "C", "A"])
            response = await client.post(
                "/api/v1/batches",
                json={"batch_id": "batch-kill", "assignment_id": ASSIGNMENT, "essays": essays(12),
                      "max_comparisons": 60, "judge": openai_judge(fake_judge), "metadata": {"run": "kill"}},
            )
            assert response.status_code == 202, response.text
            await wait_for_batch(client, "batch-kill", until=lambda b: b["progress"]["comparisons_done"] >= 15)

        cj.kill()  # SIGKILL: no shutdown hooks, the lease is left behind, calls in flight are lost
        done_at_kill, failed_at_kill, _ = await batch_counters(clean_databases, "batch-kill")
        assert done_at_kill + failed_at_kill < 60
        requests_before_restart = len(fake_judge.received)

        cj.start()  # a new process: it takes the batch over once the old lease expires
        async with httpx.AsyncClient(base_url=cj.base_url, timeout=30) as client:
            batch = await wait_for_batch(client, "batch-kill", timeout=120)
            assert batch["status"] == "completed", batch
            assert batch["stop_reason"] == "budget"
            results = (await client.get("/api/v1/batches/batch-kill/results")).json()
    finally:
        cj.stop()

    rows = await assert_log_matches_counters(clean_databases, "batch-kill")
    assert len(rows) == 60
    done, failed, budget = await batch_counters(clean_databases, "batch-kill")
    assert done + failed == budget == 60
    assert results["counts"]["comparisons_done"] == done
    assert results["metadata"] == {"run": "kill"}
    # Only the remaining slots (plus those in flight at the kill) were judged after the restart.
    judged_after = len(fake_judge.received) - requests_before_restart
    assert judged_after <= 60 - (done_at_kill + failed_at_kill) + 4


async def test_content_service_down_then_restarted_mid_batch_the_batch_completes(
    make_cj_app, clean_databases: str, content_service: RunningContentService, fake_judge: FakeOpenAIServer
) -> None:
    fake_judge.latency_s = 0.1
    async with make_cj_app(worker_count=0) as client:
        await setup_assignment(client, anchors=["E", "C", "A"])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-content", "assignment_id": ASSIGNMENT, "essays": essays(10),
                  "max_comparisons": 48, "judge": openai_judge(fake_judge)},
        )
        assert response.status_code == 202

    content_service.process.kill()  # the Content Service crashes before the batch is prepared
    content_service.process.stop()
    try:
        async with make_cj_app(**FAST_WORKER) as client:
            # The worker cannot fetch the texts: the batch waits (it does not fail) and is retried.
            await asyncio.sleep(2.0)
            batch = await (await client.get("/api/v1/batches/batch-content")).get_json()
            assert batch["status"] == "preparing", batch
            assert batch["error"] is None
            assert fake_judge.received == []

            content_service.process.start()
            await wait_for_batch(client, "batch-content", until=lambda b: b["progress"]["comparisons_done"] >= 8)
            content_service.process.restart()  # and once more while comparisons run
            batch = await wait_for_batch(client, "batch-content", timeout=90)
            assert batch["status"] == "completed", batch
            assert batch["progress"]["comparisons_done"] + batch["progress"]["comparisons_failed"] == 48
            assert (await client.get("/api/v1/batches/batch-content/results")).status_code == 200

            # The pooled client reconnected: a new batch with inline texts is accepted and completes.
            response = await client.post(
                "/api/v1/batches",
                json={"batch_id": "batch-content-2", "assignment_id": ASSIGNMENT, "essays": essays(4, "late"),
                      "max_comparisons": 8, "judge": openai_judge(fake_judge)},
            )
            assert response.status_code == 202, await response.get_data(as_text=True)
            assert (await wait_for_batch(client, "batch-content-2"))["status"] == "completed"
    finally:
        if content_service.process.process is None or content_service.process.process.poll() is not None:
            content_service.process.start()
    await assert_log_matches_counters(clean_databases, "batch-content")


async def test_a_lease_is_exclusive_and_an_expired_owner_can_write_nothing(
    make_cj_app, clean_databases: str, fake_judge: FakeOpenAIServer
) -> None:
    async with make_cj_app(worker_count=0) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-lease", "assignment_id": ASSIGNMENT, "essays": essays(3), "max_comparisons": 5},
        )
        assert response.status_code == 202

    engine = create_engine(to_asyncpg_url(clean_databases))
    repository = PostgresBatchRepository(engine)
    try:
        first = await repository.claim("worker-a", lease_seconds=1.0)
        assert first is not None and first.status == "preparing" and first.lease_owner == "worker-a"
        assert await repository.claim("worker-b", lease_seconds=1.0) is None  # held: nobody else gets it
        await repository.start_comparing(first.pk, "worker-a", anchors=[], judge_info={"name": "x"})
        await repository.start_round(first.pk, "worker-a", round_number=1, pairs=[(0, 1), (1, 2)])
        with pytest.raises(LeaseLostError):  # a worker without the lease is refused
            await repository.start_round(first.pk, "worker-b", round_number=2, pairs=[(0, 2)])

        await asyncio.sleep(1.3)  # worker-a stalls past its lease
        second = await repository.claim("worker-b", lease_seconds=30.0)
        assert second is not None and second.pk == first.pk and second.status == "comparing"
        assert not await repository.renew(first.pk, "worker-a", 30.0)

        comparisons = await repository.comparisons(first.pk)
        outcome = ComparisonOutcome(
            status="done", winner_item=0, winner_position="first", confidence=None, justification="j",
            judge_name="x", judge_model="m", latency_ms=1.0, prompt_tokens=None, completion_tokens=None,
            cost_usd=None, error=None, raw_replies=["{}"], attempts=1,
        )
        with pytest.raises(LeaseLostError):  # the stalled worker wakes up: its write is refused
            await repository.record_outcome(first.pk, "worker-a", comparisons[0].id, outcome)
        counters = await repository.record_outcome(first.pk, "worker-b", comparisons[0].id, outcome)
        assert (counters.comparisons_done, counters.written) == (1, True)
        again = await repository.record_outcome(first.pk, "worker-b", comparisons[0].id, outcome)
        assert (again.comparisons_done, again.written) == (1, False)  # a slot counts once
        # The budget (5) can never be exceeded: a round planned too large is trimmed to the room left.
        trimmed = await repository.start_round(first.pk, "worker-b", round_number=2, pairs=[(0, 1)] * 4)
        assert len(trimmed) == 3
        assert await repository.start_round(first.pk, "worker-b", round_number=3, pairs=[(0, 2)]) == []
        assert len(await repository.comparisons(first.pk)) == 5
    finally:
        await engine.dispose()
