"""The judges: LLM judges through the real SDKs against local fake servers, and the offline judges."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator

import pytest

from services.cj_assessment_service.cj_core_logic.judging import (
    METADATA_HEADER,
    JudgeCallError,
    JudgeEssay,
    JudgeReplyError,
    JudgeRequest,
    JudgeSettings,
    judge_with_reply_retries,
)
from services.cj_assessment_service.implementations.judges.anthropic_judge import AnthropicJudge
from services.cj_assessment_service.implementations.judges.factory import build_judge
from services.cj_assessment_service.implementations.judges.heuristic_judge import HeuristicJudge
from services.cj_assessment_service.implementations.judges.openai_judge import OpenAIJudge
from services.cj_assessment_service.implementations.judges.simulated_judge import SimulatedJudge
from tests.fakes.fake_anthropic_server import FakeAnthropicServer
from tests.fakes.fake_openai_server import (
    Answer,
    BadRequest,
    CodeFenced,
    FakeOpenAIServer,
    InvalidWinner,
    Latency,
    RateLimited,
    ServerError,
    Truncated,
    WithTrailingProse,
    WrongKeys,
)

SHORT_TEXT = "Uniforms are fine."
LONG_TEXT = "Uniforms remove visible differences in family income and let pupils focus on learning."


def make_request(text_a: str = SHORT_TEXT, text_b: str = LONG_TEXT, **overrides: object) -> JudgeRequest:
    fields: dict[str, object] = {
        "assignment_instructions": "Argue for or against school uniforms.",
        "student_prompt": None,
        "rubric": "Reward clear reasoning.",
        "essay_a": JudgeEssay("essay-a-ref", text_a),
        "essay_b": JudgeEssay("essay-b-ref", text_b),
        "metadata": {"batch": "b-17", "cohort": "Åsa 9C", "round": 2},
    }
    fields.update(overrides)
    return JudgeRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake(openai_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    openai_server.reset()
    default = openai_server.default
    yield openai_server
    openai_server.default = default
    openai_server.latency_s = 0.0


def openai_settings(server: FakeOpenAIServer, **overrides: object) -> JudgeSettings:
    fields: dict[str, object] = {
        "kind": "openai",
        "model": "fake-gpt",
        "base_url": server.base_url,
        "api_key": "test-key",
        "timeout_s": 5.0,
        "max_retries": 2,
        "price_per_million_input_tokens": 1.0,
        "price_per_million_output_tokens": 2.0,
    }
    fields.update(overrides)
    return JudgeSettings.model_validate(fields)


# --------------------------------------------------------------------------- OpenAI-compatible


async def test_openai_judge_normal_answer_with_usage_cost_and_structured_output(fake: FakeOpenAIServer) -> None:
    judge = build_judge(openai_settings(fake))
    assert isinstance(judge, OpenAIJudge) and judge.is_assessor
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "B"  # the fake's default: the longer essay wins
    assert verdict.confidence == 0.8
    assert verdict.model == "fake-gpt"
    assert verdict.prompt_tokens and verdict.completion_tokens
    assert verdict.cost_usd == pytest.approx((verdict.prompt_tokens * 1.0 + verdict.completion_tokens * 2.0) / 1e6)
    body = fake.requests[0]
    assert body["model"] == "fake-gpt"
    assert body["temperature"] == 0.0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "essay-a-ref" not in json.dumps(body)


async def test_openai_judge_sends_metadata_unchanged(fake: FakeOpenAIServer) -> None:
    request = make_request()
    judge = build_judge(openai_settings(fake))
    body_judge = build_judge(openai_settings(fake, metadata_transport="body"))
    try:
        await judge.judge(request)
        await body_judge.judge(request)
    finally:
        await judge.aclose()
        await body_judge.aclose()
    header_call, body_call = fake.received
    assert json.loads(header_call.headers[METADATA_HEADER.lower()]) == dict(request.metadata)
    assert "metadata" not in header_call.body
    assert body_call.body["metadata"] == dict(request.metadata)
    assert fake.metadata == [dict(request.metadata)] * 2


@pytest.mark.parametrize(
    "mode, expected",
    [("json_object", {"type": "json_object"}), ("none", None)],
)
async def test_openai_structured_output_is_configurable(fake: FakeOpenAIServer, mode: str, expected: object) -> None:
    judge = build_judge(openai_settings(fake, structured_output=mode, temperature=None, max_output_tokens=300))
    try:
        await judge.judge(make_request())
    finally:
        await judge.aclose()
    body = fake.requests[0]
    assert body.get("response_format") == expected
    assert "temperature" not in body
    assert body["max_completion_tokens"] == 300


async def test_openai_judge_waits_out_latency(fake: FakeOpenAIServer) -> None:
    fake.script(Latency(seconds=0.3, then=Answer("A")))
    judge = build_judge(openai_settings(fake))
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "A"
    assert verdict.latency_ms >= 280


async def test_openai_judge_times_out_into_a_call_error(fake: FakeOpenAIServer) -> None:
    fake.script(Latency(seconds=2.0), Latency(seconds=2.0))
    judge = build_judge(openai_settings(fake, timeout_s=0.2, max_retries=1))
    started = time.perf_counter()
    try:
        with pytest.raises(JudgeCallError) as caught:
            await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert caught.value.reason == "timeout" and caught.value.retryable
    assert time.perf_counter() - started < 1.8
    assert len(fake.wait_for_requests(2)) == 2  # the first attempt and one SDK retry


async def test_openai_judge_honours_retry_after_on_429(fake: FakeOpenAIServer) -> None:
    fake.script(RateLimited(retry_after="1"), Answer("A"))
    judge = build_judge(openai_settings(fake))
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "A"
    first, second = fake.received
    assert second.received_at - first.received_at >= 0.9  # Retry-After: 1 was honoured
    assert len(fake.requests) == 2


async def test_openai_judge_retries_a_500_then_succeeds(fake: FakeOpenAIServer) -> None:
    fake.script(ServerError(500), Answer("B"))
    judge = build_judge(openai_settings(fake))
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "B"
    assert len(fake.requests) == 2


async def test_openai_judge_gives_up_after_the_sdk_retries(fake: FakeOpenAIServer) -> None:
    fake.script(RateLimited(retry_after="0.05"), RateLimited(retry_after="0.05"), Answer("A"))
    judge = build_judge(openai_settings(fake, max_retries=1))
    try:
        with pytest.raises(JudgeCallError) as caught:
            await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert caught.value.reason == "rate_limited"
    assert caught.value.status_code == 429 and caught.value.retryable
    assert len(fake.requests) == 2


async def test_openai_bad_request_is_not_retried_and_hints_at_structured_output(fake: FakeOpenAIServer) -> None:
    fake.script(BadRequest("response_format json_schema is not supported"))
    judge = build_judge(openai_settings(fake))
    try:
        with pytest.raises(JudgeCallError) as caught:
            await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert caught.value.reason == "bad_request" and not caught.value.retryable
    assert "structured_output" in caught.value.message
    assert len(fake.requests) == 1


async def test_openai_unreachable_server_is_a_connection_error() -> None:
    judge = build_judge(JudgeSettings(kind="openai", model="m", base_url="http://127.0.0.1:9/v1",
                                      api_key="k", max_retries=0, timeout_s=2))
    try:
        with pytest.raises(JudgeCallError) as caught:
            await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert caught.value.reason == "connection"


@pytest.mark.parametrize("behaviour", [CodeFenced("A"), WithTrailingProse("A")])
async def test_openai_tolerated_reply_shapes(fake: FakeOpenAIServer, behaviour: object) -> None:
    fake.script(behaviour)
    judge = build_judge(openai_settings(fake))
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "A"


async def test_openai_reply_retry_recovers_and_shows_the_judge_its_mistake(fake: FakeOpenAIServer) -> None:
    fake.script(Truncated(), Answer("A"))
    judge = build_judge(openai_settings(fake))
    try:
        verdict = await judge_with_reply_retries(judge, make_request(), max_reply_attempts=3)
    finally:
        await judge.aclose()
    assert verdict.winner == "A"
    assert verdict.reply_attempts == 2
    assert "Essay A is clearer and bet" in verdict.rejected_replies[0]
    retry_messages = fake.requests[1]["messages"]
    assert retry_messages[-2]["role"] == "assistant"
    assert "token limit" in retry_messages[-1]["content"]  # finish_reason "length" is reported


async def test_openai_reply_retry_fails_after_the_bound_keeping_raw_replies(fake: FakeOpenAIServer) -> None:
    fake.script(Truncated(), InvalidWinner("C"), WrongKeys(), Answer("A"))
    judge = build_judge(openai_settings(fake))
    try:
        with pytest.raises(JudgeReplyError) as caught:
            await judge_with_reply_retries(judge, make_request(), max_reply_attempts=3)
    finally:
        await judge.aclose()
    error = caught.value
    assert len(error.raw_replies) == 3
    assert '"winner": "C"' in error.raw_replies[1]
    assert "better_essay" in error.raw_replies[2]
    assert error.prompt_tokens and error.completion_tokens  # spent tokens are still reported
    assert len(fake.requests) == 3
    assert fake.pending_script == 1  # the good answer was never asked for


async def test_fake_server_serves_concurrent_requests(fake: FakeOpenAIServer) -> None:
    fake.latency_s = 0.2
    judge = build_judge(openai_settings(fake))
    started = time.perf_counter()
    try:
        verdicts = await asyncio.gather(*(judge.judge(make_request()) for _ in range(16)))
    finally:
        await judge.aclose()
    assert all(v.winner == "B" for v in verdicts)
    assert time.perf_counter() - started < 1.5  # 16 × 0.2 s would be 3.2 s serially
    assert fake.max_in_flight >= 8


# --------------------------------------------------------------------------- Anthropic


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


def anthropic_settings(server: FakeAnthropicServer, **overrides: object) -> JudgeSettings:
    fields: dict[str, object] = {
        "kind": "anthropic",
        "model": "fake-claude",
        "base_url": server.base_url,
        "api_key": "test-key",
        "timeout_s": 5.0,
        "max_retries": 2,
    }
    fields.update(overrides)
    return JudgeSettings.model_validate(fields)


async def test_anthropic_judge_normal_answer_and_request_shape(anthropic_server: FakeAnthropicServer) -> None:
    anthropic_server.reset()
    judge = build_judge(anthropic_settings(anthropic_server))
    assert isinstance(judge, AnthropicJudge)
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "B"
    assert verdict.prompt_tokens and verdict.completion_tokens
    body = anthropic_server.requests[0]
    assert body["model"] == "fake-claude"
    assert "Essay A" in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["max_tokens"] == 1024
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert anthropic_server.metadata == [dict(make_request().metadata)]


async def test_anthropic_judge_retries_429_and_overload(anthropic_server: FakeAnthropicServer) -> None:
    anthropic_server.reset()
    anthropic_server.script(RateLimited(retry_after="0.2"), ServerError(529, "Overloaded"), Answer("A"))
    judge = build_judge(anthropic_settings(anthropic_server))
    try:
        verdict = await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert verdict.winner == "A"
    assert len(anthropic_server.requests) == 3


async def test_anthropic_truncated_reply_is_a_reply_error(anthropic_server: FakeAnthropicServer) -> None:
    anthropic_server.reset()
    anthropic_server.script(Truncated())
    judge = build_judge(anthropic_settings(anthropic_server, structured_output="none"))
    try:
        with pytest.raises(JudgeReplyError) as caught:
            await judge.judge(make_request())
    finally:
        await judge.aclose()
    assert "token limit" in caught.value.reason
    assert "output_config" not in anthropic_server.requests[0]


# --------------------------------------------------------------------------- heuristic


async def test_heuristic_judge_is_deterministic_symmetric_and_labelled() -> None:
    judge = build_judge(JudgeSettings(kind="heuristic"))
    assert isinstance(judge, HeuristicJudge)
    assert judge.is_assessor is False
    weak = "i think school is good. it is good. i like it"
    strong = (
        "Homework, when it is purposeful, consolidates what pupils learn in lessons. "
        "However, excessive assignments erode rest, family time and intrinsic motivation."
    )
    forward = await judge.judge(make_request(weak, strong))
    again = await judge.judge(make_request(weak, strong))
    swapped = await judge.judge(make_request(strong, weak))
    assert forward.winner == "B" and swapped.winner == "A"
    assert forward.justification == again.justification and forward.confidence == again.confidence
    assert "not an assessment" in forward.justification
    assert forward.cost_usd is None and forward.prompt_tokens is None


async def test_heuristic_tie_break_depends_on_texts_not_positions() -> None:
    judge = HeuristicJudge()
    # Same features (same words, different order) → equal scores → hash tie-break.
    text_1 = "Rain falls softly. Birds sing loudly."
    text_2 = "Birds sing loudly. Rain falls softly."
    forward = await judge.judge(make_request(text_1, text_2))
    swapped = await judge.judge(make_request(text_2, text_1))
    assert {forward.winner, swapped.winner} == {"A", "B"}
    assert "tie broken" in forward.justification


# --------------------------------------------------------------------------- simulated


def essays(ref_a: str, ref_b: str) -> JudgeRequest:
    return make_request(essay_a=JudgeEssay(ref_a, "text"), essay_b=JudgeEssay(ref_b, "text"))


async def test_simulated_judge_position_bias_is_visible() -> None:
    judge = SimulatedJudge({"x": 0.0, "y": 0.0}, position_bias=1.0, seed=3)
    verdicts = [await judge.judge(essays("x", "y")) for _ in range(2000)]
    first_wins = sum(v.winner == "A" for v in verdicts) / len(verdicts)
    expected = 1 / (1 + math.exp(-1.0))  # 0.731
    assert abs(first_wins - expected) < 0.035  # > 3 standard errors of a proportion
    assert judge.is_assessor is False


async def test_simulated_judge_noise_level_matches_the_model() -> None:
    scores = {"strong": 1.0, "weak": 0.0}
    for noise_scale in (0.5, 2.0):
        judge = SimulatedJudge(scores, noise_scale=noise_scale, seed=11)
        draws = [await judge.judge(essays("strong", "weak")) for _ in range(1000)]
        draws += [await judge.judge(essays("weak", "strong")) for _ in range(1000)]
        strong_wins = sum((v.winner == "A") == (k < 1000) for k, v in enumerate(draws)) / 2000
        expected = 1 / (1 + math.exp(-1.0 / noise_scale))
        assert abs(strong_wins - expected) < 0.035


async def test_simulated_judge_is_reproducible_whatever_the_interleaving() -> None:
    scores = {f"e{k}": k / 10 for k in range(10)}
    requests = [essays(f"e{a}", f"e{b}") for a in range(10) for b in range(10) if a != b]

    async def run(order: list[JudgeRequest], concurrent: bool) -> dict[tuple[str, str], str]:
        judge = SimulatedJudge(scores, seed=5, latency_ms=1 if concurrent else 0)
        if concurrent:
            verdicts = await asyncio.gather(*(judge.judge(r) for r in order))
        else:
            verdicts = [await judge.judge(r) for r in order]
        return {(r.essay_a.ref, r.essay_b.ref): v.winner for r, v in zip(order, verdicts)}

    sequential = await run(requests, concurrent=False)
    assert await run(list(reversed(requests)), concurrent=True) == sequential
    other_seed = SimulatedJudge(scores, seed=6)
    assert {(r.essay_a.ref, r.essay_b.ref): (await other_seed.judge(r)).winner for r in requests} != sequential


async def test_simulated_judge_unknown_ref_is_a_clear_call_error() -> None:
    judge = build_judge(JudgeSettings(kind="simulated", true_scores={"known": 0.0}))
    with pytest.raises(JudgeCallError) as caught:
        await judge.judge(essays("known", "missing"))
    assert caught.value.reason == "unknown_ref"
    assert "missing" in caught.value.message


async def test_simulated_latency_is_simulated() -> None:
    judge = SimulatedJudge({"a": 0.0, "b": 0.0}, latency_ms=50)
    started = time.perf_counter()
    await asyncio.gather(*(judge.judge(essays("a", "b")) for _ in range(10)))
    assert 0.045 < time.perf_counter() - started < 0.5  # concurrent, not 10 × 50 ms


# --------------------------------------------------------------------------- factory


def test_factory_builds_each_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert build_judge(JudgeSettings()).name == "heuristic"
    simulated = build_judge(JudgeSettings(kind="simulated", true_scores={"a": 1.0}, noise_scale=0.5, position_bias=0.2))
    assert simulated.name == "simulated" and "0.5" in simulated.model
    local = build_judge(JudgeSettings(kind="openai", model="llama3", base_url="http://127.0.0.1:11434/v1"))
    assert local.name == "openai" and local.model == "llama3"  # no key needed for a local server
    with pytest.raises(ValueError, match="api_key"):
        build_judge(JudgeSettings(kind="openai", model="gpt-4o-mini"))
