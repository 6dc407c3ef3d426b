"""CJ Assessment Service app factory. Nothing happens at import time; ``create_app`` builds it all."""

from __future__ import annotations

from typing import Any

from dishka import make_async_container
from quart import Quart
from quart_dishka import QuartDishka

from huleedu_service_libs.errors import HuleEduError
from huleedu_service_libs.logging_setup import configure_logging
from huleedu_service_libs.quart_app import configure_service_app
from huleedu_service_libs.settings import load_settings
from services.cj_assessment_service.api.anchor_routes import anchor_bp
from services.cj_assessment_service.api.assignment_routes import assignment_bp
from services.cj_assessment_service.api.batch_routes import batch_bp
from services.cj_assessment_service.api.grade_scale_routes import grade_scale_bp
from services.cj_assessment_service.cj_core_logic.worker import BatchWorkerPool, WorkSignal
from services.cj_assessment_service.config import SERVICE_NAME, CJAssessmentServiceSettings
from services.cj_assessment_service.di import (
    CJAssessmentServiceProvider,
    ContentClientProvider,
    FixedContentClientProvider,
)
from services.cj_assessment_service.protocols import AnchorRepositoryProtocol, ContentClientProtocol


def create_app(
    settings: CJAssessmentServiceSettings | None = None,
    *,
    content_client: ContentClientProtocol | None = None,
    configure_logs: bool = True,
) -> Quart:
    settings = settings or load_settings(CJAssessmentServiceSettings)
    if configure_logs:
        configure_logging(SERVICE_NAME, log_format=settings.effective_log_format, level=settings.log_level)

    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes

    content_provider = (
        FixedContentClientProvider(content_client) if content_client is not None else ContentClientProvider()
    )
    container = make_async_container(CJAssessmentServiceProvider(settings), content_provider)

    async def health_check() -> dict[str, Any]:
        return {
            "database": await _check(container, AnchorRepositoryProtocol),
            "content_service": await _check(container, ContentClientProtocol),
        }

    configure_service_app(app, service_name=SERVICE_NAME, api_token=settings.token, health_check=health_check)
    app.register_blueprint(grade_scale_bp)
    app.register_blueprint(assignment_bp)
    app.register_blueprint(anchor_bp)
    app.register_blueprint(batch_bp)
    QuartDishka(app=app, container=container)

    @app.before_serving
    async def _start_batch_workers() -> None:
        # Background workers claim batches from PostgreSQL (worker_count=0 disables them).
        if settings.worker_count > 0:
            pool = await container.get(BatchWorkerPool)
            (await container.get(WorkSignal)).subscribe(pool.wake)
            await pool.start()
            app.extensions["cj_batch_workers"] = pool

    @app.after_serving
    async def _stop_batch_workers() -> None:
        pool = app.extensions.pop("cj_batch_workers", None)
        if pool is not None:
            await pool.stop()

    @app.after_serving
    async def _close_container() -> None:
        await container.close()

    return app


async def _check(container: Any, dependency: type) -> dict[str, Any]:
    """Health reports, it does not raise."""
    try:
        await (await container.get(dependency)).ping()
    except HuleEduError as exc:
        return {"status": "unavailable", "error": exc.message}
    except Exception as exc:
        return {"status": "unavailable", "error": type(exc).__name__}
    return {"status": "ok"}
