"""``python -m services.cj_assessment_service``: migrate the database, then serve (as in production)."""

from __future__ import annotations

import os
from pathlib import Path

# Before numpy is imported: the score fits are small and run beside the event loop; several
# BLAS threads per fit fight the server (and each other) for a few cores and made the exact
# standard errors up to 40x slower on a loaded 2-core machine. An explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from huleedu_service_libs.logging_setup import configure_logging
from huleedu_service_libs.serving import run_migrations, serve
from huleedu_service_libs.settings import load_settings
from services.cj_assessment_service.config import SERVICE_NAME, CJAssessmentServiceSettings


def main() -> None:
    settings = load_settings(CJAssessmentServiceSettings)
    configure_logging(SERVICE_NAME, log_format=settings.effective_log_format, level=settings.log_level)
    run_migrations(Path(__file__).parent / "alembic.ini", settings.sqlalchemy_url)
    serve("services.cj_assessment_service.app:create_app", host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
