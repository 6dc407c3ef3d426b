"""Console logs: exceptions as a plain traceback, without local variables."""

from __future__ import annotations

import io
import sys
import time

from huleedu_service_libs.logging_setup import configure_logging, get_logger


def test_console_exception_log_is_fast_and_shows_no_locals(monkeypatch) -> None:
    # Found live: rich's default traceback printed every frame's locals; under a RecursionError
    # from a deeply nested request body it kept the event loop busy for minutes (and it put
    # request bodies and in-scope secrets in the log).
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("test_service", log_format="console", level="INFO")
    logger = get_logger("test")

    def recurse(payload: dict, depth: int) -> None:
        secret_token = "tok-do-not-log"  # noqa: F841 (a local that must not reach the log)
        recurse({"a": payload}, depth + 1)

    started = time.perf_counter()
    try:
        recurse({}, 0)
    except RecursionError:
        logger.exception("unhandled_error")
    elapsed = time.perf_counter() - started
    output = stream.getvalue()
    assert "unhandled_error" in output
    assert "RecursionError" in output
    assert "tok-do-not-log" not in output
    assert elapsed < 5.0
