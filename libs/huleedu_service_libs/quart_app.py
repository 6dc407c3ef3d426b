"""Quart wiring shared by the services.

``configure_service_app`` installs, in one place: correlation ids, bearer-token auth,
the JSON error envelope for every error (ours, Quart's 400/404/405/413, and anything
unexpected, which becomes a 500 without a stack trace), request metrics and logs,
``/healthz``, ``/metrics`` and the OpenAPI document at ``/openapi.json``. Routes then only
parse, call and shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pydantic
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from huleedu_service_libs.auth import PUBLIC_PATHS, check_bearer_token
from huleedu_service_libs.correlation import (
    CORRELATION_HEADER,
    get_correlation_id,
    normalise_incoming,
    set_correlation_id,
)
from huleedu_service_libs.errors import (
    CODE_BY_STATUS,
    BadRequestError,
    ErrorCode,
    HuleEduError,
    ValidationError,
    error_envelope,
)
from huleedu_service_libs.logging_setup import get_logger
from huleedu_service_libs.metrics import HttpMetrics
from huleedu_service_libs.openapi import install_openapi

logger = get_logger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body, status=status, headers=headers, content_type="application/json")


def error_response(
    *, code: ErrorCode | str, message: str, status: int, service: str, details: dict | None = None
) -> Response:
    envelope = error_envelope(
        code=code, message=message, correlation_id=get_correlation_id(), service=service, details=details
    )
    return json_response(envelope, status=status)


async def read_json_object(max_bytes: int | None = None) -> dict[str, Any]:
    """Parse the request body as one JSON object, or raise a 400 that says what is wrong."""
    raw = await request.get_data(cache=True)
    if max_bytes is not None and len(raw) > max_bytes:
        from huleedu_service_libs.errors import PayloadTooLargeError

        raise PayloadTooLargeError(f"Request body is larger than {max_bytes} bytes.")
    if not raw:
        raise BadRequestError("Request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
    data = strict_json_loads(text, what="Request body")
    if not isinstance(data, dict):
        raise BadRequestError(f"Request body must be a JSON object, got {type(data).__name__}.")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def strict_json_loads(text: str, *, what: str = "Request body") -> Any:
    """``json.loads`` that only accepts standard JSON and never raises anything but a 400.

    Rejects NaN/Infinity (and numbers that overflow to them), which PostgreSQL jsonb and
    other parsers refuse; turns over-deep nesting (RecursionError) and over-long integers
    (ValueError) into the same ``BadRequestError`` as a syntax error.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except RecursionError:
        raise BadRequestError(f"{what} is not acceptable JSON: nested too deeply.") from None
    except ValueError as exc:
        raise BadRequestError(f"{what} is not acceptable JSON: {exc}.") from None


def validate_model(model: type[ModelT], data: Any) -> ModelT:
    """Validate with pydantic, turning its errors into a 422 that names each field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error_from_pydantic(exc) from None


def validation_error_from_pydantic(exc: pydantic.ValidationError) -> ValidationError:
    problems = [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(body)",
            "problem": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    fields = ", ".join(dict.fromkeys(p["field"] for p in problems))
    return ValidationError(f"Invalid request: check {fields}.", details={"errors": problems})


def configure_service_app(
    app: Quart,
    *,
    service_name: str,
    api_token: str | None,
    health_check: HealthCheck,
    public_paths: frozenset[str] = PUBLIC_PATHS,
) -> HttpMetrics:
    metrics = HttpMetrics.create(service_name)
    app.extensions["huleedu_metrics"] = metrics
    app.config["PROPAGATE_EXCEPTIONS"] = False
    install_openapi(app, title=service_name, public_paths=public_paths, bearer_auth=bool(api_token))

    # Per-request bookkeeping runs on every request: resolve the request proxy once and
    # reuse the labelled metric children instead of looking them up each time.
    counters: dict[tuple[str, str, int], Any] = {}
    histograms: dict[tuple[str, str], Any] = {}

    @app.before_request
    async def _begin_request() -> None:
        req = request._get_current_object()
        g.request_started = time.perf_counter()
        set_correlation_id(normalise_incoming(req.headers.get(CORRELATION_HEADER)))
        if api_token and req.path not in public_paths:
            check_bearer_token(req.headers.get("Authorization"), api_token)

    @app.after_request
    async def _finish_request(response: Response) -> Response:
        req = request._get_current_object()
        correlation_id = get_correlation_id()
        if correlation_id:
            response.headers[CORRELATION_HEADER] = correlation_id
        started = g.get("request_started")
        elapsed = time.perf_counter() - started if started is not None else 0.0
        rule = req.url_rule
        route = rule.rule if rule is not None else "(unmatched)"
        method, status = req.method, response.status_code
        counter = counters.get((method, route, status))
        if counter is None:
            counter = counters[(method, route, status)] = metrics.requests_total.labels(
                service_name, method, route, str(status)
            )
        counter.inc()
        histogram = histograms.get((method, route))
        if histogram is None:
            histogram = histograms[(method, route)] = metrics.request_duration_seconds.labels(
                service_name, method, route
            )
        histogram.observe(elapsed)
        path = req.path
        if path not in public_paths:
            logger.info(
                "request_completed",
                method=method,
                path=path,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
        return response

    @app.errorhandler(HuleEduError)
    async def _handle_ours(exc: HuleEduError) -> Response:
        if exc.status_code >= 500:
            logger.warning("request_failed", code=str(exc.code), error=exc.message)
        return error_response(
            code=exc.code, message=exc.message, status=exc.status_code, service=service_name, details=exc.details
        )

    @app.errorhandler(pydantic.ValidationError)
    async def _handle_pydantic(exc: pydantic.ValidationError) -> Response:
        return await _handle_ours(validation_error_from_pydantic(exc))

    @app.errorhandler(HTTPException)
    async def _handle_framework(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = CODE_BY_STATUS.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)
        message = {
            404: f"No route for {request.path}.",
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: "Request body is too large.",
        }.get(status, exc.description or exc.name)
        return error_response(code=code, message=message, status=status, service=service_name)

    @app.errorhandler(Exception)
    async def _handle_unexpected(exc: Exception) -> Response:
        # The trace goes to the log, never to the client.
        logger.exception("unhandled_error", error_type=type(exc).__name__)
        return error_response(
            code=ErrorCode.INTERNAL_ERROR,
            message="Internal error; the details are in the service log under this correlation id.",
            status=500,
            service=service_name,
        )

    @app.get("/healthz")
    async def _healthz() -> Response:
        checks = await health_check()
        healthy = all(check.get("status") == "ok" for check in checks.values())
        payload = {"status": "ok" if healthy else "unavailable", "service": service_name, "checks": checks}
        return json_response(payload, status=200 if healthy else 503)

    @app.get("/metrics")
    async def _metrics() -> Response:
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    return metrics
