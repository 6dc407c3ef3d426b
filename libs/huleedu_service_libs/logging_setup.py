"""structlog set-up: JSON lines in containers, readable console output in development.

Standard-library loggers (uvicorn, alembic, sqlalchemy) are routed through the same
renderer, and handlers are replaced rather than added, so every event is printed once.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

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
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_correlation_id,
        _add_service,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
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
    for name in ("httpx", "httpcore", "openai", "anthropic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
