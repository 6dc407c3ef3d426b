"""Judge backed by the Anthropic messages API (official ``anthropic`` SDK).

Same contract and resilience as the OpenAI judge: the SDK retries timeouts, connection
errors, 429 (honouring ``Retry-After``), 5xx and 529 "overloaded" with backoff.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic

from services.cj_assessment_service.cj_core_logic.judging import (
    JUDGE_REPLY_SCHEMA,
    JudgeRequest,
    JudgeSettings,
    JudgeVerdict,
    build_messages,
    metadata_request_options,
    split_system_prompt,
    token_cost_usd,
    verdict_from_reply,
)
from services.cj_assessment_service.implementations.judges._sdk_support import resolve_api_key, to_judge_call_error

# The messages API requires a reply cap; a verdict with a short justification fits easily.
DEFAULT_MAX_OUTPUT_TOKENS = 1024


class AnthropicJudge:
    name = "anthropic"
    is_assessor = True

    def __init__(self, settings: JudgeSettings) -> None:
        assert settings.model, "JudgeSettings guarantees a model for kind 'anthropic'"
        self.model: str = settings.model
        self._settings = settings
        self._client = anthropic.AsyncAnthropic(
            api_key=resolve_api_key(settings, "ANTHROPIC_API_KEY"),
            base_url=settings.base_url,  # None → ANTHROPIC_BASE_URL or api.anthropic.com
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        settings = self._settings
        extra_headers, extra_body = metadata_request_options(settings.metadata_transport, request.metadata)
        system, messages = split_system_prompt(build_messages(request))
        arguments: dict[str, Any] = {
            "model": self.model,
            "system": system,
            "messages": messages,
            "max_tokens": settings.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS,
        }
        if settings.temperature is not None:
            # This SDK version no longer exposes `temperature` as an argument (recent models
            # fix it), but the API still accepts it for the models that do; send it raw.
            # The messages API caps it at 1.
            extra_body = {**extra_body, "temperature": min(settings.temperature, 1.0)}
        if settings.structured_output == "json_schema":
            arguments["output_config"] = {"format": {"type": "json_schema", "schema": JUDGE_REPLY_SCHEMA}}
        # "json_object" has no Anthropic equivalent; the prompt already demands JSON only.

        started = time.perf_counter()
        try:
            message = await self._client.messages.create(
                **arguments, extra_headers=extra_headers or None, extra_body=extra_body or None
            )
        except anthropic.AnthropicError as error:
            raise to_judge_call_error(error, anthropic, structured_output=settings.structured_output) from error
        latency_ms = (time.perf_counter() - started) * 1000

        prompt_tokens = message.usage.input_tokens if message.usage else None
        completion_tokens = message.usage.output_tokens if message.usage else None
        text = "".join(block.text for block in message.content if getattr(block, "type", None) == "text")
        return verdict_from_reply(
            text,
            model=message.model or self.model,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=token_cost_usd(
                prompt_tokens,
                completion_tokens,
                price_per_million_input_tokens=settings.price_per_million_input_tokens,
                price_per_million_output_tokens=settings.price_per_million_output_tokens,
            ),
            truncated=message.stop_reason == "max_tokens",
        )

    async def aclose(self) -> None:
        await self._client.close()
