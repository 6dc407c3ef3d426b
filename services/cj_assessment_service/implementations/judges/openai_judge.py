"""Judge backed by any OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama, LiteLLM, ...).

Transport resilience is the official SDK's job: ``max_retries`` retries with exponential
backoff on timeouts, connection errors, 408/409/429 and 5xx, honouring ``Retry-After``;
``timeout_s`` bounds each attempt. What is left after that becomes a ``JudgeCallError``.
"""

from __future__ import annotations

import time
from typing import Any

import openai

from services.cj_assessment_service.cj_core_logic.judging import (
    JUDGE_REPLY_SCHEMA,
    JUDGE_REPLY_SCHEMA_NAME,
    JudgeReplyError,
    JudgeRequest,
    JudgeSettings,
    JudgeVerdict,
    build_messages,
    metadata_request_options,
    token_cost_usd,
    verdict_from_reply,
)
from services.cj_assessment_service.implementations.judges._sdk_support import resolve_api_key, to_judge_call_error


def response_format_for(structured_output: str) -> dict[str, Any] | None:
    if structured_output == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": JUDGE_REPLY_SCHEMA_NAME, "strict": True, "schema": JUDGE_REPLY_SCHEMA},
        }
    if structured_output == "json_object":
        return {"type": "json_object"}  # the prompt mentions JSON, which this mode requires
    return None


class OpenAIJudge:
    name = "openai"
    is_assessor = True

    def __init__(self, settings: JudgeSettings) -> None:
        assert settings.model, "JudgeSettings guarantees a model for kind 'openai'"
        self.model: str = settings.model
        self._settings = settings
        self._client = openai.AsyncOpenAI(
            api_key=resolve_api_key(settings, "OPENAI_API_KEY"),
            base_url=settings.base_url,  # None → the SDK's default (OPENAI_BASE_URL or api.openai.com)
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        settings = self._settings
        extra_headers, extra_body = metadata_request_options(settings.metadata_transport, request.metadata)
        arguments: dict[str, Any] = {"model": self.model, "messages": build_messages(request)}
        # Optional parameters are left out entirely when unset: several models and
        # compatible servers reject parameters they do not support even at defaults.
        if settings.temperature is not None:
            arguments["temperature"] = settings.temperature
        if settings.max_output_tokens is not None:
            arguments["max_completion_tokens"] = settings.max_output_tokens
        response_format = response_format_for(settings.structured_output)
        if response_format is not None:
            arguments["response_format"] = response_format

        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                **arguments, extra_headers=extra_headers or None, extra_body=extra_body or None
            )
        except openai.OpenAIError as error:
            raise to_judge_call_error(error, openai, structured_output=settings.structured_output) from error
        latency_ms = (time.perf_counter() - started) * 1000  # includes the SDK's retries and waits

        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else None
        completion_tokens = usage.completion_tokens if usage else None
        cost = token_cost_usd(
            prompt_tokens,
            completion_tokens,
            price_per_million_input_tokens=settings.price_per_million_input_tokens,
            price_per_million_output_tokens=settings.price_per_million_output_tokens,
        )
        model = completion.model or self.model
        if not completion.choices:
            raise JudgeReplyError("the API returned no choices", "", model=model,
                                  prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost)
        choice = completion.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            raise JudgeReplyError(f"the model refused: {refusal}", refusal, model=model,
                                  prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost)
        return verdict_from_reply(
            choice.message.content or "",
            model=model,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            truncated=choice.finish_reason == "length",
        )

    async def aclose(self) -> None:
        await self._client.close()
