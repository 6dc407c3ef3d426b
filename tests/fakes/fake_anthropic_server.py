"""A scriptable local server speaking the Anthropic messages API (``POST /v1/messages``).

Same behaviours, scripting and recording as ``FakeOpenAIServer``; only the wire format
differs. ``.base_url`` is the server root, as the ``anthropic`` SDK appends ``/v1/messages``.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.fake_openai_server import HttpFailure, ThreadedJudgeServer, count_words_as_tokens, find_essays

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(block.get("text", "") for block in content if isinstance(block, dict))
    return ""


class FakeAnthropicServer(ThreadedJudgeServer):
    @property
    def base_url(self) -> str:
        return self.root_url

    async def _handle(self, method: str, path: str, body: Any) -> tuple[int, list[tuple[str, str]], Any]:
        if method != "POST" or path.rstrip("/") != "/v1/messages":
            return 404, [], _error("not_found_error", f"no route {path}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or "max_tokens" not in body:
            return 400, [], _error("invalid_request_error", "messages and max_tokens are required")
        texts = [_content_text(body.get("system"))] + [
            _content_text(message.get("content")) for message in body["messages"] if isinstance(message, dict)
        ]
        outcome = await self._behave(find_essays(texts))
        if isinstance(outcome, HttpFailure):
            error_type = _ERROR_TYPES.get(outcome.status, "api_error")
            return outcome.status, list(outcome.headers), _error(error_type, outcome.message)
        return 200, [], {
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake-claude"),
            "content": [{"type": "text", "text": outcome.text}],
            "stop_reason": _STOP_REASONS.get(outcome.finish_reason, "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": sum(count_words_as_tokens(text) for text in texts),
                "output_tokens": count_words_as_tokens(outcome.text),
            },
        }
