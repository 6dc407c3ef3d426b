"""A scriptable local server speaking the OpenAI chat-completions protocol.

Tests point the real ``openai`` SDK (or the whole CJ service) at it, so the client code
that runs in production — retries, Retry-After handling, timeouts, parsing — is the code
under test. It runs in-process, in its own thread and event loop, on 127.0.0.1 with a
free port, so it serves concurrent requests from the test process and from child
processes alike.

Usage::

    with FakeOpenAIServer() as server:              # default: the longer essay wins
        server.script(RateLimited(retry_after="1"), Answer("B"))
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
        ...
        assert len(server.requests) == 2            # parsed JSON bodies, in arrival order
        server.metadata                             # per request: what the judge sent as metadata

Scripted behaviours are consumed one per request in arrival order; when the queue is
empty the default behaviour answers. ``latency_s`` adds a delay to every request.
Run ``python -m tests.fakes.fake_openai_server --port 8999 --latency 0.3`` to start one
from a terminal (for the dev stack and the throughput benchmark).

The default judge finds the essays through the ``<essay_a>``/``<essay_b>`` tags that
``cj_core_logic.judging.build_messages`` puts around them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import uvicorn

METADATA_HEADER = "x-cj-request-metadata"  # lower case: ASGI header names are lower case


# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True)
class ScriptedReply:
    """Reply text the model 'generated' and why it stopped."""

    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class HttpFailure:
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()
    error_type: str = "server_error"


@dataclass(frozen=True)
class Essays:
    """The two texts the fake found in the prompt (None when the prompt did not hold them)."""

    a: str
    b: str


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How the server answers one request. ``delay_s`` is waited before answering."""

    delay_s: float = 0.0

    def respond(self, essays: Essays | None) -> ScriptedReply | HttpFailure:
        raise NotImplementedError


def _verdict_json(winner: str, confidence: float | None = 0.75, justification: str = "Scripted verdict.") -> str:
    return json.dumps({"justification": justification, "winner": winner, "confidence": confidence})


@dataclass(frozen=True)
class Answer(Behaviour):
    """A well-formed verdict."""

    winner: str = "A"
    confidence: float | None = 0.75
    justification: str = "Scripted verdict."

    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply(_verdict_json(self.winner, self.confidence, self.justification))


@dataclass(frozen=True)
class LongerEssayWins(Behaviour):
    """Deterministic judge: more words wins; equal length → the lexically greater text wins.

    The tie-break looks only at the texts, never at their positions, so swapping A and B
    swaps the answer.
    """

    def respond(self, essays: Essays | None) -> ScriptedReply | HttpFailure:
        if essays is None:
            message = "fake server: no <essay_a>/<essay_b> found in the messages"
            return HttpFailure(400, message, error_type="invalid_request_error")
        key_a, key_b = (len(essays.a.split()), essays.a), (len(essays.b.split()), essays.b)
        winner = "A" if key_a >= key_b else "B"
        return ScriptedReply(_verdict_json(winner, 0.8, "The longer essay develops its ideas further."))


@dataclass(frozen=True)
class Latency(Behaviour):
    """Answer like ``then`` (the server default when None) after ``seconds``."""

    seconds: float = 1.0
    then: Behaviour | None = None

    def respond(self, essays: Essays | None) -> ScriptedReply | HttpFailure:  # resolved by the server
        raise AssertionError("Latency is unwrapped by the server")


@dataclass(frozen=True)
class RateLimited(Behaviour):
    """429 with an optional ``Retry-After`` (seconds, as a string, sent verbatim)."""

    retry_after: str | None = "1"

    def respond(self, essays: Essays | None) -> HttpFailure:
        headers = (("retry-after", self.retry_after),) if self.retry_after is not None else ()
        return HttpFailure(429, "Rate limit reached (scripted).", headers, error_type="rate_limit_error")


@dataclass(frozen=True)
class ServerError(Behaviour):
    status: int = 500
    message: str = "Internal server error (scripted)."

    def respond(self, essays: Essays | None) -> HttpFailure:
        return HttpFailure(self.status, self.message)


@dataclass(frozen=True)
class BadRequest(Behaviour):
    """400, e.g. a server that rejects ``response_format``."""

    message: str = "Bad request (scripted)."

    def respond(self, essays: Essays | None) -> HttpFailure:
        return HttpFailure(400, self.message, error_type="invalid_request_error")


@dataclass(frozen=True)
class RawReply(Behaviour):
    """Any reply text, verbatim."""

    text: str = ""
    finish_reason: str = "stop"

    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply(self.text, self.finish_reason)


@dataclass(frozen=True)
class CodeFenced(Behaviour):
    winner: str = "A"

    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply(f"Here is my judgement:\n```json\n{_verdict_json(self.winner)}\n```\n")


@dataclass(frozen=True)
class WithTrailingProse(Behaviour):
    winner: str = "A"

    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply(_verdict_json(self.winner) + "\n\nI hope this helps; both essays had merits.")


@dataclass(frozen=True)
class WrongKeys(Behaviour):
    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply(json.dumps({"better_essay": "A", "reason": "Clearer argument."}))


@dataclass(frozen=True)
class Truncated(Behaviour):
    """A reply cut off mid-object, reported with finish_reason "length" as a real server would."""

    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply('{"justification": "Essay A is clearer and bet', finish_reason="length")


@dataclass(frozen=True)
class InvalidWinner(Behaviour):
    winner: str = "C"

    def respond(self, essays: Essays | None) -> ScriptedReply:
        return ScriptedReply(_verdict_json(self.winner))


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    body: Any
    headers: dict[str, str]
    received_at: float  # time.monotonic()

    @property
    def metadata(self) -> Any:
        """Request metadata as the judge sent it: the header (JSON) or a body ``metadata`` field."""
        if METADATA_HEADER in self.headers:
            return json.loads(self.headers[METADATA_HEADER])
        if isinstance(self.body, dict):
            return self.body.get("metadata")
        return None


_ESSAY_PATTERN = re.compile(r"<essay_a>\n?(.*?)\n?</essay_a>.*?<essay_b>\n?(.*?)\n?</essay_b>", re.DOTALL)


def find_essays(message_texts: Iterable[str]) -> Essays | None:
    for text in message_texts:
        match = _ESSAY_PATTERN.search(text)
        if match:
            return Essays(match.group(1), match.group(2))
    return None


# --------------------------------------------------------------------------- server core


class ThreadedJudgeServer:
    """Shared machinery: uvicorn in a background thread, a behaviour queue, request records.

    Subclasses implement the wire protocol (``_handle``) for one API.
    """

    def __init__(
        self,
        *,
        default: Behaviour | None = None,
        latency_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.default: Behaviour = default or LongerEssayWins()
        self.latency_s = latency_s
        self._host, self._requested_port = host, port
        self._port: int | None = None
        self._queue: collections.deque[Behaviour] = collections.deque()
        self._records: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self.max_in_flight = 0  # highest number of requests handled at once (for concurrency checks)

    # ---- lifecycle

    def start(self) -> ThreadedJudgeServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http="h11",
            backlog=4096,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])),  # type: ignore[union-attr]
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ThreadedJudgeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- scripting and inspection

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def script(self, *behaviours: Behaviour | Iterable[Behaviour]) -> None:
        """Queue behaviours for the next requests (one each, in arrival order). Lists are flattened."""
        with self._lock:
            for item in behaviours:
                if isinstance(item, Behaviour):
                    self._queue.append(item)
                else:
                    self._queue.extend(item)

    def set_default(self, behaviour: Behaviour) -> None:
        self.default = behaviour

    @property
    def pending_script(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget scripted behaviours and recorded requests (the default behaviour stays)."""
        with self._lock:
            self._queue.clear()
            self._records.clear()
            self.max_in_flight = 0

    @property
    def received(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    @property
    def requests(self) -> list[Any]:
        """Parsed JSON bodies of every request, in arrival order."""
        return [record.body for record in self.received]

    @property
    def metadata(self) -> list[Any]:
        """Per request, the metadata the client sent (header or body field), in arrival order."""
        return [record.metadata for record in self.received]

    def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"saw {len(self.received)} requests, expected {count}")
            time.sleep(0.01)
        return self.received

    # ---- ASGI

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    async def _asgi(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw_body = b"".join(chunks)
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            body = json.loads(raw_body) if raw_body else None
        except json.JSONDecodeError:
            body = raw_body.decode("utf-8", "replace")
        with self._lock:
            self._records.append(RecordedRequest(scope["path"], body, headers, time.monotonic()))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            status, response_headers, payload = await self._handle(scope["method"], scope["path"], body)
        finally:
            with self._lock:
                self._in_flight -= 1
        encoded = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    *((key.encode(), value.encode()) for key, value in response_headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": encoded})

    async def _behave(self, essays: Essays | None) -> ScriptedReply | HttpFailure:
        """Pick the next behaviour, wait its delays, and produce its outcome."""
        behaviour = self._next_behaviour()
        delay = self.latency_s + behaviour.delay_s
        while isinstance(behaviour, Latency):
            delay += behaviour.seconds
            behaviour = behaviour.then or self.default
            delay += behaviour.delay_s
        if delay > 0:
            await asyncio.sleep(delay)
        return behaviour.respond(essays)

    async def _handle(self, method: str, path: str, body: Any) -> tuple[int, list[tuple[str, str]], Any]:
        raise NotImplementedError


def count_words_as_tokens(text: str) -> int:
    # Whitespace words: close enough to make usage non-zero and proportional to length.
    return len(text.split())


class FakeOpenAIServer(ThreadedJudgeServer):
    """``POST /v1/chat/completions`` (``.base_url`` ends in /v1, as the OpenAI SDK expects)."""

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    async def _handle(self, method: str, path: str, body: Any) -> tuple[int, list[tuple[str, str]], Any]:
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return 404, [], {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}}
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            message = "body must be a JSON object with 'messages'"
            return 400, [], {"error": {"message": message, "type": "invalid_request_error"}}
        texts = [_message_text(message) for message in body["messages"]]
        outcome = await self._behave(find_essays(texts))
        if isinstance(outcome, HttpFailure):
            error = {"error": {"message": outcome.message, "type": outcome.error_type, "code": None}}
            return outcome.status, list(outcome.headers), error
        prompt_tokens = sum(count_words_as_tokens(text) for text in texts)
        completion_tokens = count_words_as_tokens(outcome.text)
        return 200, [], {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": outcome.text},
                    "finish_reason": outcome.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _message_text(message: Any) -> str:
    """Text of a chat message whose content is a string or a list of text parts."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenAI chat-completions judge server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args()
    server = FakeOpenAIServer(latency_s=args.latency, host=args.host, port=args.port).start()
    print(f"fake OpenAI judge at {server.base_url} (longer essay wins); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
