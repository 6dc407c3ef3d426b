"""HTTP to the CJ Assessment Service and the Content Service, with their bearer tokens.

Every failure becomes a :class:`RunnerError` with one line saying what happened and
what to do: a service that cannot be reached, a refused token, an unknown
assignment or batch, a request the service rejected.

Where URLs and tokens come from (first found wins): the command-line flags, the
environment (``CJ_SERVICE_URL``, ``CONTENT_SERVICE_URL``, ``CJ_SERVICE_TOKEN``,
``CONTENT_SERVICE_TOKEN``), the local dev stack's ``.devstack/state.json`` (written by
``python3 run.py dev start``), and finally the default ports on localhost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from huleedu_service_libs.http_client import HttpTimeouts, RetryPolicy, create_http_client, request_with_retries
from scripts.cj_experiments_runners.eng5_np.errors import (
    InputError,
    NotFound,
    RunnerError,
    ServiceRefused,
    ServiceUnavailable,
)

CJ = "CJ Assessment Service"
CONTENT = "Content Service"
DEFAULT_CJ_URL = "http://127.0.0.1:9095"
DEFAULT_CONTENT_URL = "http://127.0.0.1:8001"
START_HINT = "start the dev stack with `python3 run.py dev start` or pass --cj-url/--content-url"


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    token: str | None
    url_source: str
    token_source: str


def _devstack_state() -> dict:
    try:
        from scripts.devstack import load_state

        return load_state()
    except Exception:  # a broken or missing state file just means "not from the dev stack"
        return {}


def resolve_endpoints(
    cj_url: str | None = None,
    content_url: str | None = None,
    cj_token: str | None = None,
    content_token: str | None = None,
) -> tuple[Endpoint, Endpoint]:
    """(cj, content) endpoints: flags, then environment, then .devstack/state.json, then defaults."""
    state = _devstack_state()
    services = state.get("services") or {}
    tokens = state.get("tokens") or {}

    def pick(flag: str | None, env: str, state_value: str | None, default: str | None) -> tuple[str | None, str]:
        if flag:
            return flag, "flag"
        if os.environ.get(env):
            return os.environ[env], f"${env}"
        if state_value:
            return state_value, ".devstack/state.json"
        return default, "default"

    out = []
    for name, key, url_flag, token_flag, url_env, token_env, default in (
        (CJ, "cj_assessment_service", cj_url, cj_token, "CJ_SERVICE_URL", "CJ_SERVICE_TOKEN", DEFAULT_CJ_URL),
        (CONTENT, "content_service", content_url, content_token, "CONTENT_SERVICE_URL", "CONTENT_SERVICE_TOKEN",
         DEFAULT_CONTENT_URL),
    ):
        url, url_source = pick(url_flag, url_env, (services.get(key) or {}).get("url"), default)
        token, token_source = pick(token_flag, token_env, tokens.get(key), None)
        out.append(Endpoint(name, str(url).rstrip("/"), token, url_source, token_source))
    return out[0], out[1]


def error_message(response: httpx.Response) -> str:
    """The envelope's message (and details), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = str(error.get("message") or error.get("code") or "")
        details = error.get("details")
        if details and isinstance(details, dict):
            short = "; ".join(f"{k}: {v}" for k, v in list(details.items())[:3])
            if short and len(short) < 300:
                message = f"{message} ({short})"
        return message
    return str(body)[:200]


class ServiceClient:
    """One service: base URL, token, retries, and errors turned into RunnerErrors."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0, verbose: bool = False) -> None:
        self.endpoint = endpoint
        self.verbose = verbose
        self._client = create_http_client(
            endpoint.url,
            bearer_token=endpoint.token,
            timeouts=HttpTimeouts(connect=3.0, read=timeout, write=timeout),
        )
        self._policy = RetryPolicy(max_attempts=3, initial_backoff=0.2, max_backoff=1.0)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 202),
        not_found: str | None = None,
        not_found_hint: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        name, url = self.endpoint.name, self.endpoint.url
        try:
            response = await request_with_retries(self._client, method, path, policy=self._policy, **kwargs)
        except httpx.TimeoutException:
            raise ServiceUnavailable(f"the {name} at {url} did not answer {method} {path} in time",
                                     hint="check it is healthy (python3 run.py dev status)") from None
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach the {name} at {url} ({type(exc).__name__})",
                                     hint=START_HINT) from None
        if response.status_code in ok:
            return response
        message = error_message(response)
        status = response.status_code
        if status in (401, 403):
            env = "CJ_SERVICE_TOKEN" if name == CJ else "CONTENT_SERVICE_TOKEN"
            raise ServiceUnavailable(
                f"the {name} at {url} refused the token (HTTP {status}: {message})",
                hint=f"pass --{'cj' if name == CJ else 'content'}-token or set {env} "
                "(`python3 run.py dev start` prints the tokens)",
            )
        if status == 404 and not_found:
            raise NotFound(not_found, hint=not_found_hint)
        if status in (400, 422):
            raise InputError(f"the {name} rejected {method} {path}: {message}")
        if status == 404:
            raise NotFound(f"the {name} answered 404 to {method} {path}: {message}")
        if status >= 500:
            raise ServiceUnavailable(f"the {name} failed on {method} {path} (HTTP {status}: {message})",
                                     hint="see the service log (.devstack/logs/)")
        raise ServiceRefused(f"the {name} refused {method} {path} (HTTP {status}: {message})")

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RunnerError(f"the {self.endpoint.name} answered {method} {path} with non-JSON") from None

    async def health(self) -> dict[str, Any]:
        """/healthz without raising: {"ok": bool, "status": ..., "body"/"error": ...}."""
        try:
            response = await self._client.get("/healthz", timeout=5.0)
        except httpx.HTTPError as exc:
            return {"ok": False, "error": f"cannot reach {self.endpoint.url} ({type(exc).__name__})"}
        try:
            body = response.json()
        except ValueError:
            body = response.text[:200]
        return {"ok": response.status_code == 200, "status": response.status_code, "body": body}


def _q(value: str) -> str:
    return quote(str(value), safe="")


class ContentClient(ServiceClient):
    async def upload_text(self, text: str, metadata: dict[str, Any] | None = None) -> str:
        body = await self.json("POST", "/v1/content", json={"content": text, "metadata": metadata or {}}, ok=(200, 201))
        storage_id = body.get("storage_id") if isinstance(body, dict) else None
        if not storage_id:
            raise RunnerError("the Content Service answered POST /v1/content without a storage_id")
        return str(storage_id)

    async def exists(self, storage_id: str) -> bool:
        response = await self.request("HEAD", f"/v1/content/{_q(storage_id)}", ok=(200, 404))
        return response.status_code == 200


def items(payload: Any, *keys: str) -> list:
    """A list from a payload that is either the list itself or an object holding it under one of ``keys``."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in (*keys, "items", "data", "results"):
            if isinstance(payload.get(key), list):
                return payload[key]
    return []


class CJClient(ServiceClient):
    # --- grade scales and assignments ------------------------------------------------
    async def grade_scale(self, scale_id: str) -> dict[str, Any]:
        return await self.json(
            "GET", f"/api/v1/grade-scales/{_q(scale_id)}",
            not_found=f"grade scale {scale_id!r} does not exist on the {CJ}",
            not_found_hint="use a built-in scale (swedish_8_anchor, eng5_np_legacy_9_step, eng5_np_national_9_step) "
            "or create one with --mode create-assignment --grades ...",
        )

    async def put_grade_scale(self, scale_id: str, grades: list[str], below_lowest: str | None,
                              description: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"grades": grades, "description": description}
        if below_lowest:
            body["below_lowest"] = below_lowest
        return await self.json("PUT", f"/api/v1/grade-scales/{_q(scale_id)}", json=body, ok=(200, 201))

    async def assignment(self, assignment_id: str) -> dict[str, Any] | None:
        response = await self.request("GET", f"/api/v1/assignments/{_q(assignment_id)}", ok=(200, 404))
        if response.status_code == 404:
            return None
        return unwrap(response.json(), "assignment")

    async def require_assignment(self, assignment_id: str) -> dict[str, Any]:
        found = await self.assignment(assignment_id)
        if found is None:
            raise NotFound(
                f"assignment {assignment_id} does not exist on the {CJ} at {self.endpoint.url}",
                hint="create it with --mode create-assignment, or register anchors first "
                "(--mode register-anchors --anchors FILE creates it with the file's grade scale)",
            )
        return found

    async def put_assignment(self, assignment_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """(assignment, created|updated|unchanged)."""
        response = await self.request("PUT", f"/api/v1/assignments/{_q(assignment_id)}", json=body, ok=(200, 201))
        payload = unwrap(response.json(), "assignment")
        default = "created" if response.status_code == 201 else "updated"
        return payload, str(payload.get("status") or default) if isinstance(payload, dict) else default

    # --- anchors -------------------------------------------------------------------------
    async def register_anchor(self, body: dict[str, Any]) -> dict[str, Any]:
        return unwrap(await self.json("POST", "/api/v1/anchors/register", json=body, ok=(200, 201)), "anchor")

    async def anchors(self, assignment_id: str) -> list[dict[str, Any]]:
        payload = await self.json(
            "GET", f"/api/v1/assignments/{_q(assignment_id)}/anchors",
            not_found=f"assignment {assignment_id} does not exist on the {CJ}",
        )
        return items(payload, "anchors")

    async def verify_anchors(self, assignment_id: str) -> dict[str, Any]:
        return await self.json("POST", f"/api/v1/assignments/{_q(assignment_id)}/anchors/verify", json={},
                               not_found=f"assignment {assignment_id} does not exist on the {CJ}")

    async def prune_anchors(self, assignment_id: str, *, dry_run: bool) -> dict[str, Any]:
        return await self.json("POST", f"/api/v1/assignments/{_q(assignment_id)}/anchors/prune",
                               json={"dry_run": dry_run}, params={"dry_run": str(dry_run).lower()},
                               not_found=f"assignment {assignment_id} does not exist on the {CJ}")

    # --- batches -------------------------------------------------------------------------
    def _batch_missing(self, batch_id: str) -> dict[str, str]:
        return {"not_found": f"batch {batch_id!r} does not exist on the {CJ} at {self.endpoint.url}",
                "not_found_hint": "check --batch-id (and that the runner points at the same service)"}

    async def submit_batch(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        batch_id = body.get("batch_id")
        try:
            response = await self.request("POST", "/api/v1/batches", json=body, ok=(200, 201, 202))
        except ServiceRefused as exc:
            if "409" not in exc.message:
                raise
            raise ServiceRefused(
                f"batch {batch_id!r} already exists with different essays or settings",
                hint=f"choose a new --batch-id, or fetch the existing one with --mode fetch-results --batch-id {batch_id}",
            ) from None
        return unwrap(response.json(), "batch"), response.status_code

    async def batch(self, batch_id: str) -> dict[str, Any]:
        return unwrap(await self.json("GET", f"/api/v1/batches/{_q(batch_id)}", **self._batch_missing(batch_id)),
                      "batch")

    async def results(self, batch_id: str) -> dict[str, Any]:
        return await self.json("GET", f"/api/v1/batches/{_q(batch_id)}/results", **self._batch_missing(batch_id))

    async def comparisons(self, batch_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        for _ in range(1000):  # follows pagination when the service pages the log
            payload = await self.json("GET", f"/api/v1/batches/{_q(batch_id)}/comparisons", params=params,
                                      **self._batch_missing(batch_id))
            page = items(payload, "comparisons")
            out.extend(page)
            cursor = payload.get("next_cursor") or payload.get("next_offset") if isinstance(payload, dict) else None
            if not cursor or not page:
                break
            params = {"cursor": cursor} if payload.get("next_cursor") else {"offset": cursor}
        return out

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self.json("POST", f"/api/v1/batches/{_q(batch_id)}/cancel", json={},
                               **self._batch_missing(batch_id))


def unwrap(payload: Any, key: str) -> Any:
    """``{"<key>": {...}}`` → the inner object; anything else unchanged."""
    if isinstance(payload, dict) and isinstance(payload.get(key), dict) and len(payload) <= 3:
        return payload[key]
    return payload
