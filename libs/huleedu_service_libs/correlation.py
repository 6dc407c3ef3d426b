"""Correlation ids: accept the caller's, otherwise make one, and carry it everywhere."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

CORRELATION_HEADER = "X-Correlation-ID"

_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Anything printable and short is accepted as-is, so callers can use their own ids;
# anything else (header injection, megabyte headers) is replaced by a fresh id.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def normalise_incoming(value: str | None) -> str:
    if value and _ACCEPTABLE.match(value.strip()):
        return value.strip()
    return new_correlation_id()


def get_correlation_id() -> str | None:
    return _current.get()


def set_correlation_id(value: str | None) -> None:
    _current.set(value)


def as_uuid_or_none(value: str | None) -> uuid.UUID | None:
    """The database keeps correlation ids as uuid; a caller's free-form id is kept only in logs."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
