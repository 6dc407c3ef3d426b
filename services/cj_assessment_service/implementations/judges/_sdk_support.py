"""What the two LLM judges share: API-key resolution and SDK error → ``JudgeCallError`` mapping.

The ``openai`` and ``anthropic`` SDKs come from the same generator and have parallel
exception hierarchies, so one mapping serves both; the SDK module is passed in.
"""

from __future__ import annotations

import os
from types import ModuleType

from services.cj_assessment_service.cj_core_logic.judging import JudgeCallError, JudgeSettings

# Placeholder for OpenAI-compatible servers that ignore the key (vLLM, Ollama, fakes):
# the SDK refuses to start without one.
UNUSED_API_KEY = "not-needed"

_STRUCTURED_OUTPUT_HINT = (
    " If this server does not support structured output, set the judge setting "
    "structured_output to 'json_object' or 'none'."
)


def resolve_api_key(settings: JudgeSettings, env_var: str) -> str:
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    # Not for a judge a batch redirected to its own base_url: that server would get our key.
    from_env = os.environ.get(env_var) if settings.env_api_key_allowed else None
    if from_env:
        return from_env
    if settings.base_url:
        return UNUSED_API_KEY
    raise ValueError(
        f"judge kind {settings.kind!r} needs an api_key (or {env_var} in the environment) "
        "when no base_url of a local server is configured"
    )


def to_judge_call_error(error: Exception, sdk: ModuleType, *, structured_output: str) -> JudgeCallError:
    """Translate an SDK exception (raised after the SDK's own retries) into a ``JudgeCallError``."""
    if isinstance(error, sdk.APITimeoutError):
        return JudgeCallError("timeout", "the judge API did not answer in time (after retries)", retryable=True)
    if isinstance(error, sdk.APIConnectionError):
        return JudgeCallError("connection", f"could not reach the judge API: {error}", retryable=True)
    if isinstance(error, sdk.APIStatusError):
        status = error.status_code
        message = str(getattr(error, "message", error))
        if status == 429:
            return JudgeCallError("rate_limited", message, status_code=status, retryable=True)
        if status >= 500:
            return JudgeCallError("server_error", message, status_code=status, retryable=True)
        if status == 408:
            return JudgeCallError("timeout", message, status_code=status, retryable=True)
        if status in (400, 422):
            hint = _STRUCTURED_OUTPUT_HINT if structured_output != "none" else ""
            return JudgeCallError("bad_request", message + hint, status_code=status)
        if status in (401, 403):
            return JudgeCallError("auth", message, status_code=status)
        if status == 404:
            return JudgeCallError("not_found", f"{message} (check the model name and base_url)", status_code=status)
        return JudgeCallError(f"http_{status}", message, status_code=status, retryable=status == 409)
    if isinstance(error, sdk.APIResponseValidationError):
        return JudgeCallError("invalid_response", f"the judge API returned an unexpected response: {error}")
    return JudgeCallError("sdk_error", f"{type(error).__name__}: {error}")
