"""dishka providers of the Content Service: settings, engine and repository (app scope)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dishka import Provider, Scope, provide
from sqlalchemy.ext.asyncio import AsyncEngine

from huleedu_service_libs.database import create_engine
from services.content_service.config import ContentServiceSettings
from services.content_service.implementations.postgres_repository import PostgresContentRepository
from services.content_service.protocols import ContentRepositoryProtocol


def create_content_engine(settings: ContentServiceSettings) -> AsyncEngine:
    """The engine of the Content Service's repository.

    Autocommit: each repository operation is a single statement, committed by PostgreSQL
    before it answers (durable), without BEGIN/COMMIT round trips. Pre-ping by socket
    state by default (``db_pre_ping``): connections closed by the server (restart,
    pg_terminate_backend) are replaced on checkout without a round trip; long-idle ones are
    pinged with a query first (chosen with scripts/benchmarks/content_service_load.py, where
    a query per checkout was a visible share of a GET). ``db_pre_ping=query`` restores
    SQLAlchemy's pool_pre_ping.
    """
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        autocommit=True,
        pre_ping=settings.db_pre_ping,
    )


class ContentServiceProvider(Provider):
    def __init__(self, settings: ContentServiceSettings) -> None:
        super().__init__(scope=Scope.APP)
        self._settings = settings

    @provide
    def settings(self) -> ContentServiceSettings:
        return self._settings

    @provide
    async def engine(self, settings: ContentServiceSettings) -> AsyncIterator[AsyncEngine]:
        engine = create_content_engine(settings)
        yield engine
        await engine.dispose()

    @provide
    def repository(self, engine: AsyncEngine) -> ContentRepositoryProtocol:
        return PostgresContentRepository(engine)


class InMemoryRepositoryProvider(Provider):
    """Replaces the PostgreSQL repository (fast route tests, DESIGN §3)."""

    def __init__(self, settings: ContentServiceSettings, repository: ContentRepositoryProtocol) -> None:
        super().__init__(scope=Scope.APP)
        self._settings = settings
        self._repository = repository

    @provide
    def settings(self) -> ContentServiceSettings:
        return self._settings

    @provide
    def repository(self) -> ContentRepositoryProtocol:
        return self._repository
