"""The judge contract: what a judge is asked, what it must answer, and how replies are checked.

Everything here is pure (no I/O) so the worker, the judges and the tests share one
definition of the prompt and of a valid reply:

- ``JudgeRequest`` / ``JudgeVerdict`` / ``Judge``: the protocol every judge implements
  (OpenAI-compatible, Anthropic, heuristic baseline, simulated).
- ``build_messages``: the prompt. It carries the assignment's instructions, student
  prompt and rubric and the two texts as "Essay A" and "Essay B". Essay ids never enter
  it, and nothing in it tells a judge which essay is an anchor.
- ``parse_judge_reply``: strict validation of the reply JSON. It tolerates a code fence
  or prose around exactly one JSON object and never guesses a winner from prose.
- ``judge_with_reply_retries``: a bounded number of fresh attempts when a reply cannot
  be parsed; afterwards the comparison fails with every raw reply kept for inspection.
- ``JudgeSettings`` / ``merge_judge_settings``: which judge to build, with per-batch
  overrides validated against the service defaults.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

Winner = Literal["A", "B"]

# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class JudgeEssay:
    """One text shown to a judge. ``ref`` is ours (essay id / anchor id) and never reaches a prompt."""

    ref: str
    text: str


@dataclass(frozen=True)
class ReplyFeedback:
    """A rejected reply and why it was rejected, replayed to the judge on the next attempt."""

    raw_reply: str
    reason: str


@dataclass(frozen=True)
class JudgeRequest:
    """One comparison: ``essay_a`` is shown first, ``essay_b`` second.

    ``metadata`` is the batch's free-form metadata; LLM judges send it with the request
    unchanged (see ``JudgeSettings.metadata_transport``). ``reply_feedback`` is filled in
    by ``judge_with_reply_retries`` only.
    """

    assignment_instructions: str
    student_prompt: str | None
    rubric: str | None
    essay_a: JudgeEssay
    essay_b: JudgeEssay
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reply_feedback: tuple[ReplyFeedback, ...] = ()


@dataclass(frozen=True)
class JudgeVerdict:
    """A judge's decision plus what it cost. ``winner`` refers to the shown positions."""

    winner: Winner
    confidence: float | None
    justification: str
    model: str
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    raw_reply: str
    # Replies rejected before this one (by judge_with_reply_retries), oldest first.
    rejected_replies: tuple[str, ...] = ()

    @property
    def reply_attempts(self) -> int:
        return len(self.rejected_replies) + 1


class JudgeReplyError(Exception):
    """The judge answered, but the reply is not a valid verdict.

    ``raw_replies`` holds every reply that was tried (one for a single call, all of them
    after ``judge_with_reply_retries`` gives up), so the failure can be inspected later.
    Token counts and cost are those of the failed calls: they were still spent.
    """

    def __init__(
        self,
        reason: str,
        raw_reply: str,
        *,
        raw_replies: tuple[str, ...] | None = None,
        model: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cost_usd: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw_reply = raw_reply
        self.raw_replies: tuple[str, ...] = raw_replies if raw_replies is not None else (raw_reply,)
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cost_usd = cost_usd

    @property
    def attempts(self) -> int:
        return len(self.raw_replies)


class JudgeCallError(Exception):
    """The call itself failed after the SDK's own retries (timeout, connection, 429, 5xx, 4xx).

    ``reason`` is a short stable code (``timeout``, ``connection``, ``rate_limited``,
    ``server_error``, ``bad_request``, ``auth``, ``not_found``, ``http_<status>``,
    ``invalid_response``, ``unknown_ref``, ``metadata_too_large``); ``retryable`` says
    whether trying again later could help.
    """

    def __init__(
        self, reason: str, message: str, *, status_code: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status_code = status_code
        self.retryable = retryable


@runtime_checkable
class Judge(Protocol):
    """Anything that can compare two essays.

    ``is_assessor`` is False for the heuristic and simulated judges so results can say
    that their verdicts are not assessments.
    """

    name: str
    model: str
    is_assessor: bool

    async def judge(self, request: JudgeRequest) -> JudgeVerdict: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- prompt

# Field order matters for structured output: models generate keys in schema order, so
# asking for the justification first lets the model reason before it commits to a winner.
JUDGE_REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "justification": {"type": "string"},
        "winner": {"type": "string", "enum": ["A", "B"]},
        "confidence": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    },
    "required": ["justification", "winner", "confidence"],
    "additionalProperties": False,
}
JUDGE_REPLY_SCHEMA_NAME = "comparative_judgement"

SYSTEM_PROMPT = (
    "You are an experienced teacher assessing student writing by comparative judgement. "
    "You will see two essays written for the same assignment, labelled Essay A and Essay B. "
    "Decide which essay is the better response overall, using the assignment instructions "
    "and the rubric when one is given. Judge quality, not length: a longer essay is not "
    "better for being longer. The order in which the essays are shown means nothing. "
    "You must choose one essay even when they are close.\n\n"
    "Reply with a single JSON object and nothing else:\n"
    '{"justification": "<two or three sentences>", "winner": "A" or "B", '
    '"confidence": <number from 0.0 to 1.0, how sure you are>}'
)

# The essay bodies are wrapped in tags so a text that itself contains headings cannot be
# mistaken for the end of an essay. Fakes and tests locate the essays through these tags.
ESSAY_A_OPEN, ESSAY_A_CLOSE = "<essay_a>", "</essay_a>"
ESSAY_B_OPEN, ESSAY_B_CLOSE = "<essay_b>", "</essay_b>"


def build_messages(request: JudgeRequest) -> list[dict[str, str]]:
    """Chat messages for one comparison: a system message, the task, and any retry feedback.

    Only texts and assessment context go in; ``JudgeEssay.ref`` and anything that could
    reveal which essay is an anchor stay out.
    """
    sections = [f"## Assignment instructions\n{request.assignment_instructions.strip()}"]
    if request.student_prompt and request.student_prompt.strip():
        sections.append(f"## Prompt given to the students\n{request.student_prompt.strip()}")
    if request.rubric and request.rubric.strip():
        sections.append(f"## Rubric\n{request.rubric.strip()}")
    sections.append(f"## Essay A\n{ESSAY_A_OPEN}\n{request.essay_a.text.strip()}\n{ESSAY_A_CLOSE}")
    sections.append(f"## Essay B\n{ESSAY_B_OPEN}\n{request.essay_b.text.strip()}\n{ESSAY_B_CLOSE}")
    sections.append(
        "Which essay is better, A or B? Answer with the JSON object only: "
        '{"justification": "...", "winner": "A" or "B", "confidence": 0.0-1.0}'
    )
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(sections)},
    ]
    # A rejected reply is shown back with the reason, which is far more likely to produce
    # a valid answer than repeating an identical request (at temperature 0 the model would
    # often repeat the same mistake).
    for feedback in request.reply_feedback:
        messages.append({"role": "assistant", "content": feedback.raw_reply})
        messages.append(
            {
                "role": "user",
                "content": (
                    f"That reply could not be used ({feedback.reason}). Answer again with exactly one "
                    'JSON object: {"justification": "...", "winner": "A" or "B", "confidence": 0.0-1.0}'
                ),
            }
        )
    return messages


def split_system_prompt(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """(system text, remaining messages) for APIs that take the system prompt separately."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return system, [m for m in messages if m["role"] != "system"]


# --------------------------------------------------------------------------- reply parsing


class ParsedReply(NamedTuple):
    winner: Winner
    confidence: float | None
    justification: str


_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_ALLOWED_KEYS = frozenset({"winner", "confidence", "justification"})


def parse_judge_reply(raw: str) -> ParsedReply:
    """Validate a judge's reply; raise ``JudgeReplyError`` for anything that is not one clear verdict.

    Accepted: one JSON object, optionally inside one code fence and/or with prose after it
    (and prose without braces before it). Keys: ``winner`` ("A"/"B", case and surrounding
    blanks ignored) and ``justification`` (string) are required; ``confidence`` is a number
    in [0, 1] or null/absent. The 0–1 scale is what the prompt asks for; other scales
    (1–5, percentages) are rejected rather than rescaled, because silently reinterpreting
    a number is a guess. Unknown keys are rejected too: strict means strict.
    """
    if raw is None or not raw.strip():
        raise JudgeReplyError("empty reply", raw or "")
    text = raw.strip()

    fences = _FENCE.findall(text)
    if len(fences) > 1:
        raise JudgeReplyError("more than one code block in the reply", raw)
    if len(fences) == 1:
        text = fences[0].strip()
    elif text.count("```") == 1:
        raise JudgeReplyError("unterminated code block (reply truncated?)", raw)

    start = text.find("{")
    if start < 0:
        raise JudgeReplyError("no JSON object in the reply", raw)
    decoder = json.JSONDecoder()
    try:
        payload, end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise JudgeReplyError(f"incomplete or invalid JSON object ({error.msg})", raw) from error
    if _contains_json_object(text[end:], decoder):
        raise JudgeReplyError("more than one JSON object in the reply", raw)
    if not isinstance(payload, dict):
        raise JudgeReplyError("reply JSON is not an object", raw)

    unknown = sorted(set(payload) - _ALLOWED_KEYS)
    if unknown:
        raise JudgeReplyError(f"unexpected keys {unknown}; expected winner, confidence, justification", raw)
    if "winner" not in payload:
        raise JudgeReplyError("missing key 'winner'", raw)
    if "justification" not in payload:
        raise JudgeReplyError("missing key 'justification'", raw)

    winner_value = payload["winner"]
    if not isinstance(winner_value, str) or winner_value.strip().upper() not in ("A", "B"):
        raise JudgeReplyError(f"winner must be 'A' or 'B', got {winner_value!r}", raw)
    winner: Winner = "A" if winner_value.strip().upper() == "A" else "B"

    justification = payload["justification"]
    if not isinstance(justification, str):
        raise JudgeReplyError("justification must be a string", raw)

    confidence = payload.get("confidence")
    if confidence is not None:
        # bool is an int subclass; true/false is not a confidence.
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise JudgeReplyError(f"confidence must be a number or null, got {confidence!r}", raw)
        if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
            raise JudgeReplyError(f"confidence must lie in [0, 1], got {confidence!r}", raw)
        confidence = float(confidence)

    return ParsedReply(winner, confidence, justification.strip())


def _contains_json_object(text: str, decoder: json.JSONDecoder) -> bool:
    """True when trailing prose holds another decodable JSON object (an ambiguous reply)."""
    position = text.find("{")
    while position >= 0:
        try:
            value, _ = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(value, dict):
                return True
        position = text.find("{", position + 1)
    return False


# --------------------------------------------------------------------------- verdict helpers


def token_cost_usd(
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    price_per_million_input_tokens: float | None,
    price_per_million_output_tokens: float | None,
) -> float | None:
    """Cost of one call from per-million-token prices; None when prices or counts are unknown."""
    if price_per_million_input_tokens is None or price_per_million_output_tokens is None:
        return None
    if prompt_tokens is None or completion_tokens is None:
        return None
    return (
        prompt_tokens * price_per_million_input_tokens + completion_tokens * price_per_million_output_tokens
    ) / 1_000_000


def verdict_from_reply(
    raw_reply: str,
    *,
    model: str,
    latency_ms: float,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cost_usd: float | None,
    truncated: bool = False,
) -> JudgeVerdict:
    """Parse an LLM reply into a verdict, or raise ``JudgeReplyError`` carrying the call's usage."""
    try:
        parsed = parse_judge_reply(raw_reply)
    except JudgeReplyError as error:
        reason = f"{error.reason} (reply cut off at the token limit)" if truncated else error.reason
        raise JudgeReplyError(
            reason,
            raw_reply or "",
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd,
        ) from None
    return JudgeVerdict(
        winner=parsed.winner,
        confidence=parsed.confidence,
        justification=parsed.justification,
        model=model,
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd,
        raw_reply=raw_reply,
    )


def _add(total: float | None, value: float | None) -> float | None:
    if value is None:
        return total
    return value if total is None else total + value


async def judge_with_reply_retries(judge: Judge, request: JudgeRequest, *, max_reply_attempts: int) -> JudgeVerdict:
    """Ask ``judge`` up to ``max_reply_attempts`` times while its replies cannot be parsed.

    Only ``JudgeReplyError`` is retried here; transport failures (``JudgeCallError``) were
    already retried by the SDK and propagate at once. Each new attempt shows the judge its
    rejected reply and the reason. Tokens and cost of rejected attempts are added to the
    verdict (they were spent). After the last attempt the error is re-raised with every
    raw reply, oldest first.
    """
    if max_reply_attempts < 1:
        raise ValueError("max_reply_attempts must be at least 1")
    rejected: list[JudgeReplyError] = []
    attempt_request = request
    for _ in range(max_reply_attempts):
        try:
            verdict = await judge.judge(attempt_request)
        except JudgeReplyError as error:
            rejected.append(error)
            attempt_request = dataclasses.replace(
                attempt_request,
                reply_feedback=(*attempt_request.reply_feedback, ReplyFeedback(error.raw_reply, error.reason)),
            )
            continue
        if not rejected:
            return verdict
        prompt_tokens, completion_tokens, cost = verdict.prompt_tokens, verdict.completion_tokens, verdict.cost_usd
        for error in rejected:
            prompt_tokens = _add(prompt_tokens, error.prompt_tokens)
            completion_tokens = _add(completion_tokens, error.completion_tokens)
            cost = _add(cost, error.cost_usd)
        return dataclasses.replace(
            verdict,
            prompt_tokens=None if prompt_tokens is None else int(prompt_tokens),
            completion_tokens=None if completion_tokens is None else int(completion_tokens),
            cost_usd=cost,
            rejected_replies=tuple(error.raw_reply for error in rejected),
        )

    last = rejected[-1]
    prompt_tokens = completion_tokens = cost = None
    for error in rejected:
        prompt_tokens = _add(prompt_tokens, error.prompt_tokens)
        completion_tokens = _add(completion_tokens, error.completion_tokens)
        cost = _add(cost, error.cost_usd)
    raise JudgeReplyError(
        f"no valid reply after {len(rejected)} attempt(s); last: {last.reason}",
        last.raw_reply,
        raw_replies=tuple(error.raw_reply for error in rejected),
        model=last.model,
        prompt_tokens=None if prompt_tokens is None else int(prompt_tokens),
        completion_tokens=None if completion_tokens is None else int(completion_tokens),
        cost_usd=cost,
    )


# --------------------------------------------------------------------------- settings

JudgeKind = Literal["openai", "anthropic", "heuristic", "simulated"]

# Header used by the default metadata transport. Headers are tolerated by every
# OpenAI-compatible server and by Anthropic, whereas a body field is not: OpenAI only
# accepts string-to-string `metadata` (16 keys), Anthropic's `metadata` only `user_id`.
METADATA_HEADER = "X-CJ-Request-Metadata"
MAX_HEADER_METADATA_BYTES = 6000  # common proxies cap a single header at about 8 KiB


def metadata_request_options(
    transport: Literal["header", "body", "none"], metadata: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """(extra headers, extra body fields) that carry request metadata to an LLM API.

    Raises ``JudgeCallError("metadata_too_large")`` when the header would exceed what
    proxies accept; the fix is ``metadata_transport="body"`` or smaller metadata.
    """
    if transport == "none" or not metadata:
        return {}, {}
    if transport == "body":
        return {}, {"metadata": dict(metadata)}
    # ensure_ascii keeps the header value plain ASCII whatever the metadata holds.
    encoded = json.dumps(dict(metadata), ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    if len(encoded) > MAX_HEADER_METADATA_BYTES:
        raise JudgeCallError(
            "metadata_too_large",
            f"request metadata is {len(encoded)} bytes as a header (limit {MAX_HEADER_METADATA_BYTES}); "
            "use metadata_transport='body' or send less metadata",
        )
    return {METADATA_HEADER: encoded}, {}


class JudgeSettings(BaseModel):
    """Which judge to build and how. Service defaults, optionally overridden per batch.

    ``metadata_transport`` decides how ``JudgeRequest.metadata`` travels with LLM calls:
    ``header`` (default) sends it as compact ASCII JSON in ``X-CJ-Request-Metadata`` —
    safe with OpenAI, Anthropic, vLLM, Ollama and proxies; ``body`` adds a top-level
    ``metadata`` field to the JSON body (for servers and gateways that read it, e.g.
    LiteLLM; real OpenAI rejects non-string values there); ``none`` drops it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: JudgeKind = "heuristic"
    model: str | None = Field(default=None, description="Model name; required for openai/anthropic")
    base_url: str | None = Field(default=None, description="API base URL (OpenAI-compatible: include /v1)")
    api_key: SecretStr | None = None
    temperature: float | None = Field(default=0.0, ge=0.0, le=2.0, description="None: let the server choose")
    max_output_tokens: int | None = Field(default=None, ge=16, description="Reply token cap; Anthropic needs one")
    timeout_s: float = Field(default=60.0, gt=0, description="Per HTTP attempt")
    max_retries: int = Field(default=3, ge=0, le=10, description="SDK retries on timeouts, 429, 5xx, connection")
    structured_output: Literal["json_schema", "json_object", "none"] = "json_schema"
    metadata_transport: Literal["header", "body", "none"] = "header"
    max_reply_attempts: int = Field(default=3, ge=1, le=10, description="Attempts while replies cannot be parsed")
    price_per_million_input_tokens: float | None = Field(default=None, ge=0)
    price_per_million_output_tokens: float | None = Field(default=None, ge=0)
    # Simulated judge only.
    true_scores: dict[str, float] | None = Field(default=None, description="Essay/anchor ref -> true score")
    noise_scale: float = Field(default=1.0, gt=0, description="Logistic scale of judge noise")
    position_bias: float = Field(default=0.0, description="Logit added in favour of the first-shown essay")
    seed: int = 0
    latency_ms: float = Field(default=0.0, ge=0, description="Simulated answer delay")
    # Whether OPENAI_API_KEY / ANTHROPIC_API_KEY from the environment may be sent. False
    # once a batch override points the judge at another base_url: the service's key must
    # never travel to a server the caller chose. Private, so no request can set it.
    _env_api_key_allowed: bool = PrivateAttr(default=True)

    @property
    def env_api_key_allowed(self) -> bool:
        return self._env_api_key_allowed

    @model_validator(mode="after")
    def _check_kind_requirements(self) -> JudgeSettings:
        if self.kind in ("openai", "anthropic") and not self.model:
            raise ValueError(f"judge kind {self.kind!r} needs a model name ('model')")
        if self.kind == "simulated" and not self.true_scores:
            raise ValueError("judge kind 'simulated' needs 'true_scores' (ref -> score)")
        if self.true_scores and not all(math.isfinite(v) for v in self.true_scores.values()):
            raise ValueError("true_scores must be finite numbers")
        return self

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to log and to store in results: secrets left out, only whether one is set."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        data["api_key_set"] = self.api_key is not None
        return data


def merge_judge_settings(defaults: JudgeSettings, override: Mapping[str, Any] | None) -> JudgeSettings:
    """Per-batch override on top of the service defaults, validated as a whole.

    Unknown keys fail with pydantic's "Extra inputs are not permitted" naming the key.
    The service's API key is not carried over when an override changes ``kind`` or
    ``base_url``: otherwise a batch could send our key to a server of its choosing. For
    the same reason, a judge whose ``base_url`` the override changed never falls back to
    the API keys in the environment.
    """
    if not override:
        return defaults
    merged: dict[str, Any] = {**defaults.model_dump(), **dict(override)}
    redirects = any(key in override and override[key] != getattr(defaults, key) for key in ("kind", "base_url"))
    if redirects and "api_key" not in override:
        merged["api_key"] = None
    settings = JudgeSettings.model_validate(merged)
    if "base_url" in override and override["base_url"] != defaults.base_url:
        settings._env_api_key_allowed = False
    return settings
