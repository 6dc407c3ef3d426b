"""Typed errors and the one JSON error envelope every service answers with.

Errors are raised where they happen and turned into the envelope once, at the edge
(see ``quart_app.install_error_handlers``), so routes never build error responses.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_REQUEST = "BAD_REQUEST"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"


# The stable mapping of codes to HTTP statuses (DESIGN §5).
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.AUTHENTICATION_REQUIRED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
}

CODE_BY_STATUS: dict[int, ErrorCode] = {status: code for code, status in STATUS_BY_CODE.items()}


class HuleEduError(Exception):
    """Base of every error that should reach a client as an envelope."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code

    @property
    def status_code(self) -> int:
        return STATUS_BY_CODE[self.code]


class BadRequestError(HuleEduError):
    code = ErrorCode.BAD_REQUEST


class ValidationError(HuleEduError):
    code = ErrorCode.VALIDATION_ERROR


class AuthenticationError(HuleEduError):
    code = ErrorCode.AUTHENTICATION_REQUIRED


class ForbiddenError(HuleEduError):
    code = ErrorCode.FORBIDDEN


class NotFoundError(HuleEduError):
    code = ErrorCode.NOT_FOUND


class ConflictError(HuleEduError):
    code = ErrorCode.CONFLICT


class PayloadTooLargeError(HuleEduError):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaTypeError(HuleEduError):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class UpstreamError(HuleEduError):
    """Another service answered, but with something we cannot use (→ 502)."""

    code = ErrorCode.UPSTREAM_ERROR


class ServiceUnavailableError(HuleEduError):
    """A dependency (database, another service) cannot be reached right now (→ 503)."""

    code = ErrorCode.SERVICE_UNAVAILABLE


class UpstreamTimeoutError(HuleEduError):
    code = ErrorCode.UPSTREAM_TIMEOUT


def error_envelope(
    *,
    code: ErrorCode | str,
    message: str,
    correlation_id: str | None,
    service: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The single error body shape used by every service."""
    return {
        "error": {
            "code": str(code),
            "message": message,
            "correlation_id": correlation_id,
            "service": service,
            "details": details or {},
        }
    }
