"""HTTP client for the Content Service (DESIGN §3), on the shared pooled client with retries.

The shared ``httpx.AsyncClient`` forwards the current ``X-Correlation-ID`` and carries
the service token. Every way the Content Service can fail becomes a typed error that
our edge turns into the JSON envelope, never a 500:

* unreachable, or 429/5xx once the retries are spent → 503 ``SERVICE_UNAVAILABLE``
* no answer in time                                      → 504 ``UPSTREAM_TIMEOUT``
* 413 (text over its size limit)                         → 413 ``PAYLOAD_TOO_LARGE``
* 401/403 (our token is wrong or missing) and any other
  unexpected answer                                      → 502 ``UPSTREAM_ERROR``

Retrying a POST is safe: identical text is stored once and gets the same storage id.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import httpx

from huleedu_service_libs.errors import (
    PayloadTooLargeError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from huleedu_service_libs.http_client import RetryPolicy, request_with_retries
from huleedu_service_libs.logging_setup import get_logger

logger = get_logger(__name__)

UPSTREAM = "content_service"
_STORAGE_ID = re.compile(r"^[0-9a-f]{32}$")


def normalise_storage_id(storage_id: str) -> str | None:
    """32 lowercase hex characters (upper case and the dashed UUID form mean the same id, as
    in the Content Service); None for anything else, which therefore cannot exist there and
    never reaches a URL."""
    if not isinstance(storage_id, str):
        return None
    candidate = storage_id.strip().lower()
    if len(candidate) == 36 and candidate.count("-") == 4:
        candidate = candidate.replace("-", "")
    return candidate if _STORAGE_ID.match(candidate) else None


class HttpContentClient:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retry_policy: RetryPolicy | None = None,
        health_timeout: float = 2.0,
    ) -> None:
        self._client = client
        self._policy = retry_policy or RetryPolicy()
        self._health_timeout = health_timeout

    async def store_text(self, text: str, *, metadata: dict[str, Any] | None = None) -> str:
        payload: dict[str, Any] = {"content": text}
        if metadata:
            payload["metadata"] = metadata
        response = await self._send("POST", "/v1/content", json=payload)
        if response.status_code in (200, 201):
            storage_id = _json_field(response, "storage_id")
            if isinstance(storage_id, str) and _STORAGE_ID.match(storage_id):
                return storage_id
            self._unexpected(response, "POST /v1/content answered without a valid storage_id")
        if response.status_code == 413:
            raise PayloadTooLargeError(
                "The essay text is larger than the Content Service accepts; shorten it or raise the "
                "Content Service's CONTENT_SERVICE_MAX_CONTENT_BYTES.",
                details={"upstream": UPSTREAM, "upstream_status": 413, "text_bytes": len(text.encode("utf-8"))},
            )
        self._unexpected(response, "the Content Service refused to store the text")

    async def fetch_text(self, storage_id: str) -> str | None:
        normalised = normalise_storage_id(storage_id)
        if normalised is None:
            return None
        response = await self._send("GET", f"/v1/content/{normalised}")
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            try:
                return response.content.decode("utf-8")
            except UnicodeDecodeError:
                self._unexpected(response, f"content {storage_id} is not UTF-8 text")
        self._unexpected(response, f"the Content Service could not return content {storage_id}")

    async def exists(self, storage_id: str) -> bool:
        normalised = normalise_storage_id(storage_id)
        if normalised is None:
            return False
        response = await self._send("HEAD", f"/v1/content/{normalised}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        self._unexpected(response, f"the Content Service could not check content {storage_id}")

    async def ping(self) -> None:
        """One quick attempt, no retries: health checks must answer fast."""
        try:
            response = await self._client.get("/healthz", timeout=self._health_timeout)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"The Content Service is unreachable ({type(exc).__name__}).", details={"upstream": UPSTREAM}
            ) from exc
        if response.status_code != 200:
            raise ServiceUnavailableError(
                f"The Content Service reports itself unhealthy (HTTP {response.status_code}).",
                details={"upstream": UPSTREAM, "upstream_status": response.status_code},
            )

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await request_with_retries(self._client, method, url, policy=self._policy, **kwargs)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise self._unreachable(exc) from exc
            raise UpstreamTimeoutError(
                f"The Content Service did not answer in time ({type(exc).__name__}); retry shortly.",
                details={"upstream": UPSTREAM, "attempts": self._policy.max_attempts},
            ) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code in self._policy.retry_statuses:
            logger.warning("content_service_failing", method=method, status=response.status_code)
            raise ServiceUnavailableError(
                f"The Content Service is unavailable (HTTP {response.status_code} after "
                f"{self._policy.max_attempts} attempts); retry shortly.",
                details={"upstream": UPSTREAM, "upstream_status": response.status_code, **_upstream_error(response)},
            )
        return response

    def _unreachable(self, exc: Exception) -> ServiceUnavailableError:
        logger.warning("content_service_unreachable", error_type=type(exc).__name__, error=str(exc)[:200])
        return ServiceUnavailableError(
            f"The Content Service cannot be reached ({type(exc).__name__} after "
            f"{self._policy.max_attempts} attempts); retry shortly.",
            details={"upstream": UPSTREAM, "attempts": self._policy.max_attempts},
        )

    def _unexpected(self, response: httpx.Response, what: str) -> NoReturn:
        status = response.status_code
        if status in (401, 403):
            message = (
                f"The Content Service rejected this service's credentials (HTTP {status}); check "
                "CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN."
            )
        else:
            message = f"Unexpected answer from the Content Service: {what} (HTTP {status})."
        logger.warning("content_service_unexpected_answer", status=status, what=what)
        raise UpstreamError(
            message, details={"upstream": UPSTREAM, "upstream_status": status, **_upstream_error(response)}
        )


def _json_field(response: httpx.Response, name: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _upstream_error(response: httpx.Response) -> dict[str, Any]:
    """The Content Service's own error code and message, when it sent its envelope."""
    error = _json_field(response, "error")
    if not isinstance(error, dict):
        return {}
    return {
        "upstream_code": str(error.get("code", ""))[:64],
        "upstream_message": str(error.get("message", ""))[:300],
    }
