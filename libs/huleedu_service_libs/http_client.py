"""One pooled async HTTP client per app, with explicit timeouts and bounded retries.

Retries (tenacity) cover what is worth retrying between services: connection errors,
timeouts, 429 (honouring ``Retry-After``) and 5xx answers. Everything else is returned
to the caller, who maps it to its own errors.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from huleedu_service_libs.correlation import CORRELATION_HEADER, get_correlation_id
from huleedu_service_libs.logging_setup import get_logger

logger = get_logger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpTimeouts:
    connect: float = 3.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    # Never sleep longer than this for a Retry-After header, whatever the server asks.
    max_retry_after: float = 30.0
    retry_statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


def _is_retryable_exception(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError)  # connect/read/write errors and timeouts


def _make_wait(policy: RetryPolicy):
    backoff = wait_exponential_jitter(multiplier=policy.initial_backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            response: httpx.Response = outcome.result()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, policy.max_retry_after)
        return backoff(state)

    return wait


async def _add_correlation_header(request: httpx.Request) -> None:
    correlation_id = get_correlation_id()
    if correlation_id and CORRELATION_HEADER not in request.headers:
        request.headers[CORRELATION_HEADER] = correlation_id


def create_http_client(
    base_url: str,
    *,
    timeouts: HttpTimeouts | None = None,
    bearer_token: str | None = None,
    max_connections: int = 100,
    max_keepalive_connections: int = 20,
    extra_headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """A pooled client that forwards the current correlation id on every request."""
    headers = dict(extra_headers or {})
    if bearer_token:
        headers["Authorization"] = f"Bearer {bearer_token}"
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=(timeouts or HttpTimeouts()).to_httpx(),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive_connections),
        headers=headers,
        event_hooks={"request": [_add_correlation_header]},
    )


async def request_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy | None = None,
    retry_statuses: Iterable[int] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request, retrying transport errors and retryable statuses with backoff.

    Returns the last response (which may still carry a retryable status once the
    attempts are spent); raises the last ``httpx.TransportError`` if no attempt got an
    answer. Callers decide what those mean for them.
    """
    policy = policy or RetryPolicy()
    statuses = frozenset(retry_statuses) if retry_statuses is not None else policy.retry_statuses

    def _log_retry(state: RetryCallState) -> None:
        outcome = state.outcome
        reason: str
        if outcome is None:
            reason = "unknown"
        elif outcome.failed:
            reason = type(outcome.exception()).__name__
        else:
            reason = f"HTTP {outcome.result().status_code}"
        logger.warning(
            "http_retry", method=method, url=str(url), attempt=state.attempt_number, reason=reason
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_make_wait(policy),
        retry=retry_if_exception(_is_retryable_exception)
        | retry_if_result(lambda response: response.status_code in statuses),
        before_sleep=_log_retry,
        retry_error_callback=lambda state: _last_outcome(state),
        reraise=True,
    )
    return await retrying(client.request, method, url, **kwargs)


def _last_outcome(state: RetryCallState) -> httpx.Response:
    outcome = state.outcome
    assert outcome is not None
    return outcome.result()  # re-raises the transport error when the last attempt failed
