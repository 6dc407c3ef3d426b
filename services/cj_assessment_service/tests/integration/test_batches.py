"""Batches end to end, in-process app + real Content Service process + fake OpenAI server.

The judge is the real ``openai`` SDK client talking to a local server that speaks the
chat-completions protocol, so retries, Retry-After, reply parsing and metadata
transport are the production code paths. The worker really runs (in the app's
background tasks) against the real PostgreSQL schema built by the migrations.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math

import httpx

from services.cj_assessment_service.tests.conftest import RunningContentService, wipe_blobs
from services.cj_assessment_service.tests.integration.batch_support import (  # noqa: F401 (fixtures)
    ASSIGNMENT,
    FAST_WORKER,
    GRADES,
    assert_log_matches_counters,
    essays,
    fake_judge,
    fake_judge_server,
    openai_judge,
    setup_assignment,
    wait_for_batch,
)
from tests.fakes.fake_openai_server import (
    Answer,
    CodeFenced,
    FakeOpenAIServer,
    InvalidWinner,
    RateLimited,
    Truncated,
    WithTrailingProse,
    WrongKeys,
)

METADATA = {"experiment": "eng5-np", "run": 7, "tags": ["pilot", "å ä ö"], "nested": {"ok": True, "ratio": 0.5}}


async def test_batch_of_20_essays_and_anchors_completes_within_budget(
    make_cj_app, fake_judge: FakeOpenAIServer, clean_databases: str
) -> None:
    async with make_cj_app(**FAST_WORKER) as client:
        await setup_assignment(client)
        body = {
            "batch_id": "batch-20",
            "assignment_id": ASSIGNMENT,
            "essays": essays(20),
            "max_comparisons": 70,
            "judge": openai_judge(fake_judge),
            "metadata": METADATA,
        }
        response = await client.post("/api/v1/batches", json=body)
        assert response.status_code == 202, await response.get_data(as_text=True)
        submitted = await response.get_json()
        assert submitted["status"] in ("pending", "preparing")
        assert submitted["progress"]["budget"] == 70
        assert response.headers["Location"] == "/api/v1/batches/batch-20"

        batch = await wait_for_batch(client, "batch-20", timeout=90)
        assert batch["status"] == "completed", batch
        assert batch["stop_reason"] == "budget"
        assert batch["essays"] == {"students": 20, "anchors": 8}
        progress = batch["progress"]
        assert progress["comparisons_done"] + progress["comparisons_failed"] == 70  # exactly the budget
        assert progress["comparisons_queued"] == 0
        assert batch["judge"] == {"name": "openai", "model": "fake-judge-1", "is_assessor": True, "note": None}
        assert batch["started_at"] and batch["completed_at"]

        # The comparison log agrees with the counters, slot by slot.
        rows = await assert_log_matches_counters(clean_databases, "batch-20")
        assert len(rows) == 70
        log = await (await client.get("/api/v1/batches/batch-20/comparisons")).get_json()
        assert log["counts"] == {"total": 70, "done": progress["comparisons_done"], "failed": progress["comparisons_failed"], "queued": 0}
        done = [c for c in log["comparisons"] if c["status"] == "done"]
        for c in done:
            assert c["winner"] in (c["essay_a"]["essay_id"], c["essay_b"]["essay_id"])
            assert c["shown_first"] == c["essay_a"]["essay_id"]
            assert c["judge"] == {"name": "openai", "model": "fake-judge-1"}
            assert c["prompt_tokens"] > 0 and c["latency_ms"] >= 0 and c["justification"]
        # Anchors took part like students.
        assert any(c["essay_a"]["is_anchor"] or c["essay_b"]["is_anchor"] for c in done)

        # Every judge request carried the batch metadata, unchanged; no prompt names an essay id.
        seen = fake_judge.received
        assert len(seen) >= 70
        assert all(record.metadata == METADATA for record in seen)
        prompts = "\n".join(m["content"] for record in seen for m in record.body["messages"])
        assert "student-0" not in prompts and "anchor-" not in prompts
        assert "school uniforms" in prompts and "Argument, structure, language." in prompts

        response = await client.get("/api/v1/batches/batch-20/results")
        assert response.status_code == 200
        results = await response.get_json()
        assert results["metadata"] == METADATA
        assert results["stop_reason"] == "budget"
        assert results["counts"]["comparisons_done"] == progress["comparisons_done"]
        assert results["counts"]["budget"] == 70
        assert len(results["essays"]) == 28
        assert results["usage"]["prompt_tokens"] > 0
        assert 0.0 <= results["reliability"]["scale_separation"] <= 1.0
        assert results["projection"]["available"] is True
        students = [e for e in results["essays"] if not e["is_anchor"]]
        assert all(e["projected_grade"] in GRADES for e in students)
        assert all(math.isclose(sum(e["grade_probabilities"].values()), 1.0, abs_tol=1e-6) for e in students)
        # The fake judge prefers longer essays: the longest student ranks above the shortest.
        by_id = {e["essay_id"]: e for e in students}
        assert by_id["student-019"]["score"] > by_id["student-000"]["score"]
        assert results["calibration"]["anchor_leave_one_out"]["evaluated"] >= 1

        for path in ("/api/v1/batches/batch-20/results.csv", "/api/v1/batches/batch-20/results?format=csv"):
            response = await client.get(path)
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            rows_csv = list(csv.DictReader(io.StringIO(await response.get_data(as_text=True))))
            assert len(rows_csv) == 28
            assert {r["essay_id"] for r in rows_csv} >= {"student-000", "anchor-C"}

        listed = await (await client.get(f"/api/v1/batches?assignment_id={ASSIGNMENT}")).get_json()
        assert [b["batch_id"] for b in listed["batches"]] == ["batch-20"]


async def test_unusable_replies_are_retried_then_recorded_failed_never_guessed(
    make_cj_app, fake_judge: FakeOpenAIServer, clean_databases: str
) -> None:
    fake_judge.script(
        WrongKeys(), Truncated(), InvalidWinner("C"),  # comparison 1: three unusable replies → failed
        CodeFenced("A"),  # comparison 2: fenced JSON is accepted
        WithTrailingProse("B"),  # comparison 3: JSON followed by prose is accepted
        RateLimited(retry_after="0.2"), Answer("A"),  # comparison 4: 429 + Retry-After, then an answer
    )
    async with make_cj_app(**{**FAST_WORKER, "judge_concurrency": 1}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={
                "batch_id": "batch-replies",
                "assignment_id": ASSIGNMENT,
                "essays": essays(4),
                "max_comparisons": 4,
                "judge": openai_judge(fake_judge, max_reply_attempts=3),
            },
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-replies")
        assert batch["status"] == "completed", batch
        assert (batch["progress"]["comparisons_done"], batch["progress"]["comparisons_failed"]) == (3, 1)
        log = (await (await client.get("/api/v1/batches/batch-replies/comparisons")).get_json())["comparisons"]

    failed, fenced, prose, limited = log
    assert failed["status"] == "failed" and failed["winner"] is None
    assert failed["error"]["type"] == "invalid_reply"
    assert "winner must be 'A' or 'B'" in failed["error"]["message"]
    assert len(failed["raw_replies"]) == 3 and "better_essay" in failed["raw_replies"][0]
    assert failed["attempts"] == 3
    assert fenced["status"] == "done" and fenced["winner_position"] == "first"
    assert prose["status"] == "done" and prose["winner_position"] == "second"
    assert limited["status"] == "done" and limited["winner_position"] == "first"
    assert len(fake_judge.received) == 7  # 3 + 1 + 1 + 2 (the 429 retried by the SDK)
    await assert_log_matches_counters(clean_databases, "batch-replies")


async def test_a_judge_that_always_answers_a_gives_no_essay_a_positional_advantage(
    make_cj_app, fake_judge: FakeOpenAIServer
) -> None:
    fake_judge.set_default(Answer("A"))
    async with make_cj_app(**FAST_WORKER) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={
                "batch_id": "batch-always-a",
                "assignment_id": ASSIGNMENT,
                "essays": essays(12),
                "max_comparisons": 72,
                "judge": openai_judge(fake_judge),
            },
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-always-a", timeout=90)
        assert batch["status"] == "completed", batch
        results = await (await client.get("/api/v1/batches/batch-always-a/results")).get_json()

    bias = results["judge_diagnostics"]["position_bias"]
    assert bias["first_position_win_rate"] == 1.0
    assert bias["flagged"] is True and bias["one_position_only"] is True
    assert any("one position" in w for w in results["warnings"])
    # Each essay was shown first about as often as second, so none gained from the bias:
    # every score is zero within its standard error, and so is every difference.
    for essay in results["essays"]:
        assert abs(essay["score"]) <= essay["standard_error"], essay
    scores = [e["score"] for e in results["essays"]]
    widest = max(e["standard_error"] for e in results["essays"])
    assert max(scores) - min(scores) <= 2 * widest
    assert results["reliability"]["scale_separation"] < 0.5


async def test_an_anchor_whose_content_was_deleted_fails_the_batch_at_preparation(
    make_cj_app, fake_judge: FakeOpenAIServer, content_service: RunningContentService
) -> None:
    async with make_cj_app(**FAST_WORKER) as client:
        anchors = await setup_assignment(client)
        lost = anchors["C+"]
        assert await wipe_blobs(content_service.database_url, [lost["storage_id"]]) == 1
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-lost-anchor", "assignment_id": ASSIGNMENT, "essays": essays(5), "judge": openai_judge(fake_judge)},
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-lost-anchor")

        assert batch["status"] == "failed"
        assert batch["stop_reason"] == "anchor_content_missing"
        error = batch["error"]
        assert error["code"] == "anchor_content_missing"
        assert error["missing_anchors"] == [
            {"anchor_id": lost["anchor_id"], "label": "anchor-C+", "grade": "C+", "storage_id": lost["storage_id"]}
        ]
        assert "anchor-C+" in error["message"] and lost["storage_id"] in error["message"]
        assert f"/api/v1/assignments/{ASSIGNMENT}/anchors/verify" in error["hint"]
        assert f"/api/v1/assignments/{ASSIGNMENT}/anchors/prune" in error["hint"]
        assert batch["progress"]["comparisons_done"] == batch["progress"]["comparisons_failed"] == 0
        assert fake_judge.received == []  # not a single judge call

        response = await client.get("/api/v1/batches/batch-lost-anchor/results")
        assert response.status_code == 409
        assert (await response.get_json())["error"]["details"]["error"]["code"] == "anchor_content_missing"


async def test_submission_is_idempotent_and_conflicts_are_409(
    make_cj_app, fake_judge: FakeOpenAIServer, content_service: RunningContentService
) -> None:
    async with make_cj_app(worker_count=0) as client:  # no worker: the batch stays pending
        await setup_assignment(client, anchors=["E", "B"])
        body = {"batch_id": "batch-idem", "assignment_id": ASSIGNMENT, "essays": essays(3), "metadata": {"a": 1}}
        first = await client.post("/api/v1/batches", json=body)
        assert first.status_code == 202
        again = await client.post("/api/v1/batches", json=body)
        assert again.status_code == 200
        first_json, again_json = await first.get_json(), await again.get_json()
        assert again_json["batch_id"] == first_json["batch_id"] and again_json["created_at"] == first_json["created_at"]
        # Default budget: (3 students + 2 anchors) x 10 / 2.
        assert first_json["progress"]["budget"] == 25
        assert first_json["judge"]["name"] == "heuristic" and "not an assessor" in first_json["judge"]["note"]

        for changed in (
            {**body, "essays": essays(4)},
            {**body, "metadata": {"a": 2}},
            {**body, "max_comparisons": 9},
            {**body, "essays": [{**essays(3)[0], "text": "Another text."}, *essays(3)[1:]]},
        ):
            response = await client.post("/api/v1/batches", json=changed)
            assert response.status_code == 409, await response.get_data(as_text=True)
            error = (await response.get_json())["error"]
            assert error["code"] == "CONFLICT" and error["details"]["batch_id"] == "batch-idem"

        # Texts already in the Content Service can be referenced by storage id.
        stored = await client.get("/api/v1/batches/batch-idem")
        assert (await stored.get_json())["status"] == "pending"
        by_id = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-by-id", "assignment_id": ASSIGNMENT, "essays": [
                {"essay_id": "x", "storage_id": await _store(content_service, "Essay x.")},
                {"essay_id": "y", "text": "Essay y."},
            ]},
        )
        assert by_id.status_code == 202, await by_id.get_data(as_text=True)

        listed = (await (await client.get("/api/v1/batches")).get_json())["batches"]
        assert [b["batch_id"] for b in listed] == ["batch-by-id", "batch-idem"]  # newest first

        response = await client.get("/api/v1/batches/batch-idem/results")
        assert response.status_code == 409
        assert "not ready" in (await response.get_json())["error"]["message"]


async def _store(content: RunningContentService, text: str) -> str:
    """Store a text straight in the Content Service (as another client of it would)."""
    async with httpx.AsyncClient(base_url=content.base_url, headers={"Authorization": f"Bearer {content.token}"}) as http:
        response = await http.post("/v1/content", json={"content": text})
        assert response.status_code in (200, 201)
        return response.json()["storage_id"].upper()  # upper case names the same id


async def test_bad_submissions_are_4xx_with_the_reason(
    make_cj_app, fake_judge: FakeOpenAIServer
) -> None:
    async with make_cj_app(worker_count=0) as client:
        await setup_assignment(client, anchors=[])
        base = {"batch_id": "batch-bad", "assignment_id": ASSIGNMENT, "essays": essays(3)}
        unknown_storage = "0" * 32
        cases = [
            ({**base, "essays": essays(1)}, 422, "at least two"),
            ({**base, "essays": []}, 422, "at least two"),
            ({**base, "essays": essays(2) + essays(1)}, 422, "repeated: student-000"),
            ({**base, "essays": [*essays(2), {"essay_id": "z", "storage_id": unknown_storage}]}, 422, "unknown to the Content Service"),
            ({**base, "essays": [*essays(2), {"essay_id": "z", "storage_id": "not-an-id"}]}, 422, "essays.2.storage_id"),
            ({**base, "essays": [*essays(2), {"essay_id": "z", "text": "t", "storage_id": unknown_storage}]}, 422, "exactly one"),
            ({**base, "essays": [*essays(2), {"essay_id": "z", "text": "   "}]}, 422, "essays.2.text"),
            ({**base, "assignment_id": "no-such-assignment"}, 404, "No assignment"),
            ({**base, "max_comparisons": "10"}, 422, "max_comparisons"),
            ({**base, "max_comparisons": 0}, 422, "max_comparisons"),
            ({**base, "metadata": ["not", "an", "object"]}, 422, "metadata"),
            ({**base, "metadata": {"x": "nul\u0000"}}, 422, "NUL"),
            ({**base, "judge": {"kind": "oracle"}}, 422, "judge.kind"),
            ({**base, "judge": {"kind": "openai"}}, 422, "judge"),
            ({**base, "judge": {"temperture": 0.5}}, 422, "judge.temperture"),
            ({**base, "judge": {**openai_judge(fake_judge), "api_key": "sk-secret"}}, 422, "API keys"),
            ({**base, "batch_id": "bad id with spaces"}, 422, "batch_id"),
            ({**base, "unexpected": 1}, 422, "unexpected"),
        ]
        for body, status, needle in cases:
            response = await client.post("/api/v1/batches", json=body)
            text = await response.get_data(as_text=True)
            assert response.status_code == status, (body, text)
            assert needle in text, (needle, text)
            assert (await response.get_json())["error"]["code"]
        # Nothing was created by any of them.
        assert (await (await client.get("/api/v1/batches")).get_json())["batches"] == []

        response = await client.post("/api/v1/batches", data=b"[1, 2]", headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        response = await client.post("/api/v1/batches", data=b"{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        for path in ("/api/v1/batches/nope", "/api/v1/batches/nope/comparisons", "/api/v1/batches/nope/results",
                     "/api/v1/batches/nope/results.csv"):
            assert (await client.get(path)).status_code == 404
        assert (await client.post("/api/v1/batches/nope/cancel")).status_code == 404
        assert (await client.get("/api/v1/batches?limit=0")).status_code == 422


async def test_cancel_stops_the_batch_between_judge_calls(
    make_cj_app, fake_judge: FakeOpenAIServer, clean_databases: str
) -> None:
    fake_judge.latency_s = 0.3
    async with make_cj_app(**{**FAST_WORKER, "judge_concurrency": 2}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-cancel", "assignment_id": ASSIGNMENT, "essays": essays(10),
                  "max_comparisons": 60, "judge": openai_judge(fake_judge)},
        )
        assert response.status_code == 202
        await wait_for_batch(client, "batch-cancel", until=lambda b: b["progress"]["comparisons_done"] >= 4)

        response = await client.post("/api/v1/batches/batch-cancel/cancel")
        assert response.status_code == 200
        cancelled = await response.get_json()
        assert cancelled["status"] == "cancelled" and cancelled["stop_reason"] == "cancelled"
        frozen = cancelled["progress"]
        requests_at_cancel = len(fake_judge.received)

        await asyncio.sleep(1.5)
        batch = await (await client.get("/api/v1/batches/batch-cancel")).get_json()
        assert batch["status"] == "cancelled"
        # Nothing was written after the cancel, and at most the calls in flight reached the judge.
        assert (batch["progress"]["comparisons_done"], batch["progress"]["comparisons_failed"]) == (
            frozen["comparisons_done"], frozen["comparisons_failed"],
        )
        assert len(fake_judge.received) <= requests_at_cancel + 2
        assert frozen["comparisons_done"] < 60

        again = await client.post("/api/v1/batches/batch-cancel/cancel")
        assert again.status_code == 200 and (await again.get_json())["status"] == "cancelled"
        assert (await client.get("/api/v1/batches/batch-cancel/results")).status_code == 409


async def test_a_judge_that_keeps_failing_fails_the_batch_with_the_reason(
    make_cj_app, fake_judge: FakeOpenAIServer
) -> None:
    from tests.fakes.fake_openai_server import ServerError

    fake_judge.set_default(ServerError(503))
    async with make_cj_app(**{**FAST_WORKER, "failure_min_attempts": 4, "judge_max_retries": 0}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-judge-down", "assignment_id": ASSIGNMENT, "essays": essays(6),
                  "max_comparisons": 30, "judge": openai_judge(fake_judge)},
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-judge-down")
        assert batch["status"] == "failed"
        assert batch["stop_reason"] == "judge_failure_rate"
        assert batch["error"]["code"] == "judge_failure_rate"
        assert batch["error"]["last_errors"][0]["reason"] == "server_error"
        assert batch["progress"]["comparisons_done"] == 0
        assert 4 <= batch["progress"]["comparisons_failed"] < 30
        # A completed batch cannot be cancelled any more; a failed one neither.
        response = await client.post("/api/v1/batches/batch-judge-down/cancel")
        assert response.status_code == 409


async def test_a_small_batch_whose_every_comparison_failed_is_failed_not_completed(
    make_cj_app, fake_judge: FakeOpenAIServer
) -> None:
    from tests.fakes.fake_openai_server import ServerError

    fake_judge.set_default(ServerError(503))
    # A budget below failure_min_attempts: the failure-rate rule cannot fire.
    async with make_cj_app(**{**FAST_WORKER, "failure_min_attempts": 10, "judge_max_retries": 0}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-all-failed", "assignment_id": ASSIGNMENT, "essays": essays(3),
                  "max_comparisons": 3, "judge": openai_judge(fake_judge)},
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-all-failed")
        assert batch["status"] == "failed"
        assert batch["stop_reason"] == "no_successful_comparisons"
        assert batch["progress"]["comparisons_failed"] == 3


async def test_scores_that_stop_moving_end_the_batch_as_stable(make_cj_app) -> None:
    # The offline heuristic judge (the service default) is deterministic; with a generous
    # threshold the scores count as stable once every essay has its minimum comparisons.
    async with make_cj_app(**{**FAST_WORKER, "min_comparisons_per_essay": 2, "stability_threshold": 10.0}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-stable", "assignment_id": ASSIGNMENT, "essays": essays(8), "max_comparisons": 200},
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-stable")
        assert batch["status"] == "completed", batch
        assert batch["stop_reason"] == "stable"
        assert batch["progress"]["comparisons_done"] < 200
        assert batch["judge"]["name"] == "heuristic" and batch["judge"]["is_assessor"] is False
        results = await (await client.get("/api/v1/batches/batch-stable/results")).get_json()
        assert results["stop_reason"] == "stable"
        assert all(e["comparisons"] >= 2 for e in results["essays"])
        assert "not an assessor" in results["judge"]["note"]


async def test_the_rate_limit_spaces_judge_requests(make_cj_app, fake_judge: FakeOpenAIServer) -> None:
    async with make_cj_app(**{**FAST_WORKER, "judge_concurrency": 8, "judge_rate_limit_per_second": 5}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-rate", "assignment_id": ASSIGNMENT, "essays": essays(8),
                  "max_comparisons": 15, "judge": openai_judge(fake_judge)},
        )
        assert response.status_code == 202
        assert (await wait_for_batch(client, "batch-rate"))["status"] == "completed"
    times = sorted(record.received_at for record in fake_judge.received)
    assert len(times) == 15
    # 5 per second (after the limiter's initial burst of 5): the last 10 take at least ~2 s.
    assert times[-1] - times[4] >= 1.7


async def test_a_judge_call_that_times_out_is_a_failed_comparison_and_the_batch_goes_on(
    make_cj_app, fake_judge: FakeOpenAIServer
) -> None:
    from tests.fakes.fake_openai_server import Latency

    fake_judge.script(Latency(seconds=3.0))  # the first call hangs past the per-call timeout
    async with make_cj_app(**{**FAST_WORKER, "judge_concurrency": 1}) as client:
        await setup_assignment(client, anchors=[])
        response = await client.post(
            "/api/v1/batches",
            json={"batch_id": "batch-timeout", "assignment_id": ASSIGNMENT, "essays": essays(4), "max_comparisons": 4,
                  "judge": openai_judge(fake_judge, timeout_s=0.5, max_retries=0)},
        )
        assert response.status_code == 202
        batch = await wait_for_batch(client, "batch-timeout")
        assert batch["status"] == "completed", batch
        assert (batch["progress"]["comparisons_done"], batch["progress"]["comparisons_failed"]) == (3, 1)
        log = (await (await client.get("/api/v1/batches/batch-timeout/comparisons")).get_json())["comparisons"]
    assert log[0]["status"] == "failed"
    assert log[0]["error"]["type"] == "call_failed" and log[0]["error"]["reason"] == "timeout"
    results_failures = [c for c in log if c["status"] == "failed"]
    assert len(results_failures) == 1
