"""The judge contract: prompt content, strict reply parsing, the reply-retry bound, settings."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr, ValidationError

from services.cj_assessment_service.cj_core_logic.judging import (
    METADATA_HEADER,
    JudgeCallError,
    JudgeEssay,
    JudgeReplyError,
    JudgeRequest,
    JudgeSettings,
    JudgeVerdict,
    build_messages,
    judge_with_reply_retries,
    merge_judge_settings,
    metadata_request_options,
    parse_judge_reply,
    token_cost_usd,
)

VALID = '{"justification": "A argues more clearly.", "winner": "A", "confidence": 0.8}'


def make_request(**overrides: object) -> JudgeRequest:
    fields: dict[str, object] = {
        "assignment_instructions": "Write a persuasive letter to your headteacher about school uniforms.",
        "student_prompt": "Should pupils wear uniforms? Give reasons.",
        "rubric": "Reward a clear position, relevant reasons and control of language.",
        "essay_a": JudgeEssay("anchor-grade-B-7f3a", "Uniforms make every pupil equal in the classroom."),
        "essay_b": JudgeEssay("student-0042", "I think uniforms are bad because they are itchy."),
        "metadata": {"experiment": "eng5"},
    }
    fields.update(overrides)
    return JudgeRequest(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- prompt


def test_prompt_holds_context_and_both_texts_as_essay_a_and_b() -> None:
    request = make_request()
    messages = build_messages(request)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    for text in (
        request.assignment_instructions,
        request.student_prompt,
        request.rubric,
        request.essay_a.text,
        request.essay_b.text,
    ):
        assert text in user
    assert user.index("Essay A") < user.index(request.essay_a.text) < user.index("Essay B")
    assert user.index("Essay B") < user.index(request.essay_b.text)
    assert "JSON" in messages[0]["content"]


def test_prompt_reveals_no_essay_ref_and_never_mentions_anchors() -> None:
    request = make_request()
    whole_prompt = json.dumps(build_messages(request))
    assert request.essay_a.ref not in whole_prompt
    assert request.essay_b.ref not in whole_prompt
    assert "anchor" not in whole_prompt.lower()
    # Metadata travels with the request, not inside the prompt.
    assert "eng5" not in whole_prompt


def test_prompt_leaves_out_missing_student_prompt_and_rubric() -> None:
    user = build_messages(make_request(student_prompt=None, rubric="  "))[1]["content"]
    assert "Rubric" not in user
    assert "Prompt given to the students" not in user


def test_reply_feedback_is_replayed_as_conversation_turns() -> None:
    from services.cj_assessment_service.cj_core_logic.judging import ReplyFeedback

    request = make_request(reply_feedback=(ReplyFeedback('{"winner": "C"}', "winner must be 'A' or 'B'"),))
    messages = build_messages(request)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == '{"winner": "C"}'
    assert "winner must be 'A' or 'B'" in messages[3]["content"]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "raw, winner, confidence",
    [
        (VALID, "A", 0.8),
        ('  {"winner": " b ", "confidence": 1, "justification": "x"}  ', "B", 1.0),
        ('{"winner": "A", "confidence": null, "justification": "x"}', "A", None),
        ('{"winner": "B", "justification": "x"}', "B", None),
        ("```json\n" + VALID + "\n```", "A", 0.8),
        ("Here is my verdict:\n```\n" + VALID + "\n```\nThanks.", "A", 0.8),
        (VALID + "\n\nBoth essays have merit, but A is stronger.", "A", 0.8),
        ("My answer: " + VALID, "A", 0.8),
        ('{"winner": "A", "confidence": 0.6, "justification": "uses {braces} and \\"quotes\\""}', "A", 0.6),
    ],
)
def test_parse_accepts_one_clear_verdict(raw: str, winner: str, confidence: float | None) -> None:
    parsed = parse_judge_reply(raw)
    assert parsed.winner == winner
    assert parsed.confidence == confidence


@pytest.mark.parametrize(
    "raw, reason_fragment",
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("Essay A is clearly better.", "no JSON object"),
        ("A", "no JSON object"),
        ('{"better_essay": "A", "reason": "clearer"}', "unexpected keys"),
        ('{"winner": "A", "confidence": 0.7}', "justification"),
        ('{"confidence": 0.7, "justification": "A is better"}', "missing key 'winner'"),
        ('{"winner": "A", "confidence": 0.7, "justification": "ok", "extra": 1}', "unexpected keys"),
        ('{"justification": "Essay A is clearer and bet', "incomplete"),
        ("```json\n" + '{"justification": "x", "winner": "A"', "unterminated"),
        ('{"winner": "C", "confidence": 0.5, "justification": "x"}', "winner must be"),
        ('{"winner": "Essay A", "confidence": 0.5, "justification": "x"}', "winner must be"),
        ('{"winner": "AB", "confidence": 0.5, "justification": "x"}', "winner must be"),
        ('{"winner": 1, "confidence": 0.5, "justification": "x"}', "winner must be"),
        ('{"winner": null, "confidence": 0.5, "justification": "x"}', "winner must be"),
        ('{"winner": "A", "confidence": 4, "justification": "x"}', "[0, 1]"),
        ('{"winner": "A", "confidence": -0.1, "justification": "x"}', "[0, 1]"),
        ('{"winner": "A", "confidence": "0.8", "justification": "x"}', "number"),
        ('{"winner": "A", "confidence": true, "justification": "x"}', "number"),
        ('{"winner": "A", "confidence": 0.5, "justification": 3}', "justification must be"),
        (VALID + "\n" + VALID.replace('"A"', '"B"'), "more than one JSON object"),
        (VALID + " or perhaps " + VALID, "more than one JSON object"),
        ("```json\n" + VALID + "\n```\n```json\n" + VALID + "\n```", "more than one code block"),
        ('["A", 0.8, "x"]', "no JSON object"),
        ('{"winner": "A", "justification": "x"} {"note": 1}', "more than one JSON object"),
    ],
)
def test_parse_rejects_everything_else_and_never_guesses(raw: str, reason_fragment: str) -> None:
    with pytest.raises(JudgeReplyError) as caught:
        parse_judge_reply(raw)
    assert reason_fragment in caught.value.reason
    assert caught.value.raw_reply == raw
    assert caught.value.raw_replies == (raw,)


# --------------------------------------------------------------------------- reply retries


class ScriptedJudge:
    """Returns or raises the scripted outcomes in order and records the requests."""

    name = "scripted"
    model = "scripted-model"
    is_assessor = True

    def __init__(self, replies: list[str | Exception]) -> None:
        self.replies = list(replies)
        self.requests: list[JudgeRequest] = []

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        parsed = parse_judge_reply(reply)
        return JudgeVerdict(
            parsed.winner, parsed.confidence, parsed.justification, self.model, 5.0, 100, 20, 0.001, reply
        )

    async def aclose(self) -> None:
        return None


class UsageReportingJudge(ScriptedJudge):
    """Like ScriptedJudge, but rejected replies carry the tokens they used."""

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        try:
            return await super().judge(request)
        except JudgeReplyError as error:
            raise JudgeReplyError(error.reason, error.raw_reply, model=self.model, prompt_tokens=100,
                                  completion_tokens=7, cost_usd=0.001) from None


async def test_reply_retry_succeeds_after_bad_replies_and_keeps_them() -> None:
    judge = UsageReportingJudge(['{"winner": "C", "justification": "x"}', "truncated {", VALID])
    verdict = await judge_with_reply_retries(judge, make_request(), max_reply_attempts=3)
    assert verdict.winner == "A"
    assert verdict.rejected_replies == ('{"winner": "C", "justification": "x"}', "truncated {")
    assert verdict.reply_attempts == 3
    assert verdict.prompt_tokens == 300 and verdict.completion_tokens == 34
    assert verdict.cost_usd == pytest.approx(0.003)
    # Each new attempt shows the judge its earlier rejected replies.
    assert [len(r.reply_feedback) for r in judge.requests] == [0, 1, 2]


async def test_reply_retry_gives_up_after_the_bound_with_all_raw_replies() -> None:
    bad = ['{"winner": "C", "justification": "x"}', '{"choice": "A"}', '{"justification": "A is', "A"]
    judge = ScriptedJudge(list(bad))
    with pytest.raises(JudgeReplyError) as caught:
        await judge_with_reply_retries(judge, make_request(), max_reply_attempts=3)
    assert caught.value.raw_replies == tuple(bad[:3])
    assert caught.value.attempts == 3
    assert "after 3 attempt(s)" in caught.value.reason
    assert len(judge.requests) == 3  # never more than the bound


async def test_call_errors_are_not_retried_by_the_reply_wrapper() -> None:
    judge = ScriptedJudge([JudgeCallError("rate_limited", "slow down", status_code=429, retryable=True), VALID])
    with pytest.raises(JudgeCallError) as caught:
        await judge_with_reply_retries(judge, make_request(), max_reply_attempts=3)
    assert caught.value.reason == "rate_limited"
    assert len(judge.requests) == 1


async def test_reply_retry_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        await judge_with_reply_retries(ScriptedJudge([VALID]), make_request(), max_reply_attempts=0)


# --------------------------------------------------------------------------- settings and helpers


def test_cost_needs_both_prices_and_both_counts() -> None:
    assert token_cost_usd(1_000_000, 500_000, price_per_million_input_tokens=0.15,
                          price_per_million_output_tokens=0.6) == pytest.approx(0.45)
    assert token_cost_usd(10, None, price_per_million_input_tokens=1, price_per_million_output_tokens=1) is None
    assert token_cost_usd(10, 10, price_per_million_input_tokens=None, price_per_million_output_tokens=1) is None


def test_metadata_travels_as_ascii_json_header_by_default() -> None:
    headers, body = metadata_request_options("header", {"run": "ö-1", "n": 2})
    assert body == {}
    assert headers[METADATA_HEADER].isascii()
    assert json.loads(headers[METADATA_HEADER]) == {"run": "ö-1", "n": 2}
    assert metadata_request_options("body", {"run": 1}) == ({}, {"metadata": {"run": 1}})
    assert metadata_request_options("none", {"run": 1}) == ({}, {})
    assert metadata_request_options("header", {}) == ({}, {})
    with pytest.raises(JudgeCallError) as caught:
        metadata_request_options("header", {"blob": "x" * 10_000})
    assert caught.value.reason == "metadata_too_large"


def test_settings_require_what_each_kind_needs() -> None:
    assert JudgeSettings().kind == "heuristic"
    with pytest.raises(ValidationError, match="needs a model"):
        JudgeSettings(kind="openai")
    with pytest.raises(ValidationError, match="true_scores"):
        JudgeSettings(kind="simulated")
    with pytest.raises(ValidationError):
        JudgeSettings(temperature=5)


def test_merge_applies_override_and_rejects_unknown_keys() -> None:
    defaults = JudgeSettings(kind="openai", model="gpt-4o-mini", api_key=SecretStr("sk-service"), temperature=0.0)
    merged = merge_judge_settings(defaults, {"temperature": 0.3, "max_reply_attempts": 2})
    assert merged.temperature == 0.3 and merged.max_reply_attempts == 2
    assert merged.api_key is not None and merged.api_key.get_secret_value() == "sk-service"
    assert merge_judge_settings(defaults, None) is defaults
    with pytest.raises(ValidationError) as caught:
        merge_judge_settings(defaults, {"temprature": 0.3})
    assert "temprature" in str(caught.value)
    assert "Extra inputs are not permitted" in str(caught.value)


def test_merge_never_sends_the_service_key_to_a_server_chosen_by_a_batch() -> None:
    defaults = JudgeSettings(kind="openai", model="gpt-4o-mini", api_key=SecretStr("sk-service"))
    redirected = merge_judge_settings(defaults, {"base_url": "http://elsewhere.example/v1"})
    assert redirected.api_key is None
    own_key = merge_judge_settings(defaults, {"base_url": "http://elsewhere.example/v1", "api_key": "sk-batch"})
    assert own_key.api_key is not None and own_key.api_key.get_secret_value() == "sk-batch"


def test_public_dict_has_no_secrets() -> None:
    settings = merge_judge_settings(
        JudgeSettings(kind="openai", model="m"), {"api_key": "sk-very-secret", "base_url": "http://x/v1"}
    )
    public = settings.public_dict()
    assert "api_key" not in public
    assert public["api_key_set"] is True
    assert "sk-very-secret" not in json.dumps(public)
    assert "sk-very-secret" not in repr(settings)


def test_a_redirected_judge_never_gets_the_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found live: a batch with judge {"kind": "openai", "base_url": "http://attacker/v1"} made the
    # service send OPENAI_API_KEY from its environment to that server.
    from services.cj_assessment_service.implementations.judges._sdk_support import UNUSED_API_KEY, resolve_api_key

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    defaults = JudgeSettings()  # heuristic, no base_url: the service's key lives in the environment
    official = merge_judge_settings(defaults, {"kind": "openai", "model": "gpt-4o-mini"})
    assert resolve_api_key(official, "OPENAI_API_KEY") == "sk-from-env"
    redirected = merge_judge_settings(defaults, {"kind": "openai", "model": "m", "base_url": "http://elsewhere.example/v1"})
    assert resolve_api_key(redirected, "OPENAI_API_KEY") == UNUSED_API_KEY
    # Not settable from a request.
    with pytest.raises(ValidationError):
        merge_judge_settings(defaults, {"kind": "openai", "model": "m", "_env_api_key_allowed": True})
    # The service's own base_url, repeated in an override, is not a redirect.
    local = JudgeSettings(kind="openai", model="m", base_url="http://judge.internal/v1")
    same = merge_judge_settings(local, {"base_url": "http://judge.internal/v1", "temperature": 0.2})
    assert resolve_api_key(same, "OPENAI_API_KEY") == "sk-from-env"
