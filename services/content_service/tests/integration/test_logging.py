"""Logs of a real service process (CONTENT_SERVICE_LOG_FORMAT=json): one JSON line per event,
no duplicates, each request's lines carrying its correlation id (DESIGN §5)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path

import httpx

from huleedu_service_libs.testing.processes import ServiceProcess


def read_log(path: Path) -> list[dict]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = []
    for line in lines:
        event = json.loads(line)  # every line is one JSON object: nothing else is printed
        assert isinstance(event, dict), line
        events.append(event)
    return events


async def events_for(path: Path, correlation_id: str, *, expected: int, timeout: float = 5.0) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        matching = [e for e in read_log(path) if e.get("correlation_id") == correlation_id]
        if len(matching) >= expected or asyncio.get_running_loop().time() > deadline:
            await asyncio.sleep(0.3)  # a duplicate would arrive with the original: give it the chance
            return [e for e in read_log(path) if e.get("correlation_id") == correlation_id]
        await asyncio.sleep(0.05)


async def test_one_request_one_json_line_per_event_with_the_correlation_id(content_service: ServiceProcess) -> None:
    assert content_service.log_path is not None
    correlation_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=content_service.base_url, timeout=10) as client:
        response = await client.post(
            "/v1/content", content=f"log me {correlation_id}".encode(), headers={"X-Correlation-ID": correlation_id}
        )
    assert response.status_code == 201

    events = await events_for(content_service.log_path, correlation_id, expected=1)
    assert [e["event"] for e in events] == ["request_completed"]
    (event,) = events
    assert event["method"] == "POST"
    assert event["path"] == "/v1/content"
    assert event["status"] == 201
    assert event["service"] == "content_service"
    assert event["level"] == "info"
    assert event["timestamp"].endswith("Z")


async def test_error_requests_log_once_with_their_correlation_id(content_service: ServiceProcess) -> None:
    assert content_service.log_path is not None
    correlation_id = f"caller-{uuid.uuid4().hex[:8]}"  # a caller's own (non-UUID) id is kept too
    async with httpx.AsyncClient(base_url=content_service.base_url, timeout=10) as client:
        missing = await client.get(f"/v1/content/{uuid.uuid4().hex}", headers={"X-Correlation-ID": correlation_id})
        malformed = await client.get("/v1/content/not-a-uuid", headers={"X-Correlation-ID": correlation_id})
    assert (missing.status_code, malformed.status_code) == (404, 400)
    assert missing.json()["error"]["correlation_id"] == correlation_id

    events = await events_for(content_service.log_path, correlation_id, expected=2)
    assert sorted(e["status"] for e in events) == [400, 404]
    assert {e["event"] for e in events} == {"request_completed"}


async def test_no_line_is_printed_twice(content_service: ServiceProcess) -> None:
    assert content_service.log_path is not None
    async with httpx.AsyncClient(base_url=content_service.base_url, timeout=10) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(5)))
        await client.post("/v1/content", content=uuid.uuid4().bytes)
    await asyncio.sleep(0.3)
    lines = [line for line in content_service.log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    duplicates = [line for line, n in Counter(lines).items() if n > 1]
    assert duplicates == []

    events = read_log(content_service.log_path)
    startup = Counter(e["event"] for e in events if e.get("logger") in ("uvicorn.error", "huleedu_service_libs.serving"))
    # Start-up happened once, and each of its events was printed once.
    assert startup["migrations_done"] == 1
    assert startup["Application startup complete."] == 1
    assert all(e["service"] == "content_service" for e in events)
    # Health probes are not logged per request; there is no access-log line in another format.
    assert not any(e.get("path") == "/healthz" for e in events)
