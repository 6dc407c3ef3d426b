"""structlog set-up: JSON lines in containers, readable console output in development.

Our own events take structlog's fast path (a filtering bound logger that renders and
writes one line, without the standard-library logging machinery: it runs once per request).
Standard-library loggers (uvicorn, alembic, sqlalchemy) are routed through the same
processors and renderer by one root handler, and handlers are replaced rather than added,
so every event is printed once, in one format, on stderr.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Literal

import structlog

from huleedu_service_libs.correlation import get_correlation_id

LogFormat = Literal["json", "console"]


def _add_correlation_id(_logger: object, _name: str, event_dict: dict) -> dict:
    correlation_id = get_correlation_id()
    if correlation_id and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = correlation_id
    return event_dict


def configure_logging(service_name: str, *, log_format: LogFormat = "console", level: str = "INFO") -> None:
    def _add_service(_logger: object, _name: str, event_dict: dict) -> dict:
        event_dict.setdefault("service", service_name)
        return event_dict

    shared_processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_correlation_id,
        _add_service,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # A plain traceback: rich's default shows every frame's local variables, which
            # puts request bodies (and anything secret in scope) into the log, and pretty-
            # printing a deeply nested body under a RecursionError kept the event loop busy
            # for minutes, freezing the whole service on one bad request.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    exception_formatter = structlog.processors.format_exc_info if log_format == "json" else None
    structlog.configure(
        processors=[
            structlog.stdlib.add_logger_name,
            *shared_processors,
            *([exception_formatter] if exception_formatter else []),
            renderer,
        ],
        logger_factory=_StderrLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level.upper()),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if log_format == "json" else (lambda _l, _n, e: e),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that install their own handlers would print each line twice; make them
    # propagate to the root handler only. uvicorn's access log is replaced by ours.
    for name in ("uvicorn", "uvicorn.error", "hypercorn.error", "quart.app", "alembic", "httpx"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers[:] = []
        lib_logger.propagate = True
    for name in ("uvicorn.access", "hypercorn.access", "quart.serving"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers[:] = []
        lib_logger.propagate = False
        lib_logger.disabled = True
    # Chatty libraries: their DEBUG/INFO lines (one per HTTP call, font look-ups) drown ours.
    for name in ("httpx", "httpcore", "openai", "anthropic", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class _StderrLogger:
    """Writes each rendered event as one line to the *current* ``sys.stderr`` (looked up per
    call, so test runners that swap the stream keep working)."""

    _lock = threading.Lock()

    def __init__(self, name: str | None = None) -> None:
        self.name = name  # read by structlog.stdlib.add_logger_name

    def msg(self, message: str) -> None:
        with self._lock:
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    def __call__(self, *args: Any) -> _StderrLogger:
        return _StderrLogger(args[0] if args else None)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger whose events carry ``logger=<name>`` like the standard-library ones."""
    return structlog.get_logger(name) if name else structlog.get_logger()
