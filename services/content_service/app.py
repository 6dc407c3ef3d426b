"""Content Service app factory. Nothing happens at import time; ``create_app`` builds it all."""

from __future__ import annotations

from dishka import make_async_container
from quart import Quart
from quart_dishka import QuartDishka

from huleedu_service_libs.logging_setup import configure_logging
from huleedu_service_libs.quart_app import configure_service_app
from huleedu_service_libs.settings import load_settings
from services.content_service.api.content_routes import content_bp
from services.content_service.config import SERVICE_NAME, ContentServiceSettings
from services.content_service.di import ContentServiceProvider, InMemoryRepositoryProvider
from services.content_service.protocols import ContentRepositoryProtocol


def create_app(
    settings: ContentServiceSettings | None = None,
    *,
    repository: ContentRepositoryProtocol | None = None,
    configure_logs: bool = True,
) -> Quart:
    settings = settings or load_settings(ContentServiceSettings)
    if configure_logs:
        configure_logging(SERVICE_NAME, log_format=settings.effective_log_format, level=settings.log_level)

    app = Quart(__name__)
    # Quart answers 413 from Content-Length before reading the body, and stops reading a
    # chunked body as soon as it passes the limit.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_bytes

    provider = (
        InMemoryRepositoryProvider(settings, repository)
        if repository is not None
        else ContentServiceProvider(settings)
    )
    container = make_async_container(provider)

    async def health_check() -> dict:
        repo = await container.get(ContentRepositoryProtocol)
        try:
            await repo.ping()
        except Exception as exc:  # health reports, it does not raise
            return {"database": {"status": "unavailable", "error": type(exc).__name__}}
        return {"database": {"status": "ok"}}

    configure_service_app(app, service_name=SERVICE_NAME, api_token=settings.token, health_check=health_check)
    app.register_blueprint(content_bp)
    QuartDishka(app=app, container=container)

    @app.after_serving
    async def _close_container() -> None:
        await container.close()

    return app
