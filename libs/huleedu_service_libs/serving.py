"""Run a service the way production runs it: migrations first, then uvicorn (uvloop + httptools)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huleedu_service_libs.logging_setup import get_logger

logger = get_logger(__name__)


def run_migrations(alembic_ini: Path, database_url: str) -> None:
    """``alembic upgrade head`` for one service, in a child process so its logging stays its own."""
    logger.info("migrations_starting", alembic_ini=str(alembic_ini))
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(alembic_ini), "upgrade", "head"],
        env={**os.environ, "ALEMBIC_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"alembic upgrade head failed for {alembic_ini} (exit {result.returncode})")
    logger.info("migrations_done", alembic_ini=str(alembic_ini))


def _frozen_after_build(factory_path: str) -> Callable[[], Any]:
    """The app factory, followed by ``gc.freeze()``.

    Everything built at start-up (modules, classes, the app and its wiring: ~100k objects)
    lives as long as the process. Left in the collector's oldest generation, every full
    collection re-scans all of it, stalling requests for tens of milliseconds; frozen, it
    is skipped.
    """
    from uvicorn.importer import import_from_string

    factory = import_from_string(factory_path)

    def build() -> Any:
        app = factory()
        gc.collect()
        gc.freeze()
        return app

    return build


def serve(app_path: str, *, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    uvicorn.run(
        # Several workers need an import string (each worker imports it); one can take the factory.
        _frozen_after_build(app_path) if workers == 1 else app_path,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_config=None,  # keep our structlog handlers; uvicorn would install its own
        access_log=False,  # our after_request hook logs each request once
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
