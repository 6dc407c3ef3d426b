"""dishka providers of the CJ Assessment Service: settings, engine, repositories, Content Service client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from dishka import Provider, Scope, provide
from sqlalchemy.ext.asyncio import AsyncEngine

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.http_client import create_http_client
from services.cj_assessment_service.config import CJAssessmentServiceSettings
from services.cj_assessment_service.implementations.content_client import HttpContentClient
from services.cj_assessment_service.implementations.postgres_repository import (
    PostgresAnchorRepository,
    PostgresAssignmentRepository,
    PostgresGradeScaleRepository,
)
from services.cj_assessment_service.protocols import (
    AnchorRepositoryProtocol,
    AssignmentRepositoryProtocol,
    ContentClientProtocol,
    GradeScaleRepositoryProtocol,
)


class CJAssessmentServiceProvider(Provider):
    """Everything lives for the app's lifetime: one engine, one pooled HTTP client."""

    def __init__(self, settings: CJAssessmentServiceSettings) -> None:
        super().__init__(scope=Scope.APP)
        self._settings = settings

    @provide
    def settings(self) -> CJAssessmentServiceSettings:
        return self._settings

    @provide
    async def engine(self, settings: CJAssessmentServiceSettings) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(
            settings.sqlalchemy_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        yield engine
        await engine.dispose()

    @provide
    def grade_scales(self, engine: AsyncEngine) -> GradeScaleRepositoryProtocol:
        return PostgresGradeScaleRepository(engine)

    @provide
    def assignments(self, engine: AsyncEngine) -> AssignmentRepositoryProtocol:
        return PostgresAssignmentRepository(engine)

    @provide
    def anchors(self, engine: AsyncEngine) -> AnchorRepositoryProtocol:
        return PostgresAnchorRepository(engine)


class ContentClientProvider(Provider):
    """The real Content Service over HTTP (the shared pooled client with retries)."""

    def __init__(self) -> None:
        super().__init__(scope=Scope.APP)

    @provide
    async def http_client(self, settings: CJAssessmentServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
        client = create_http_client(
            settings.content_service_url, timeouts=settings.content_timeouts, bearer_token=settings.content_token
        )
        yield client
        await client.aclose()

    @provide
    def content_client(
        self, client: httpx.AsyncClient, settings: CJAssessmentServiceSettings
    ) -> ContentClientProtocol:
        return HttpContentClient(
            client,
            retry_policy=settings.content_retry_policy,
            health_timeout=settings.content_health_timeout_seconds,
        )


class FixedContentClientProvider(Provider):
    """Replaces the HTTP client with a given one (e.g. the in-memory client in fast tests)."""

    def __init__(self, content_client: ContentClientProtocol) -> None:
        super().__init__(scope=Scope.APP)
        self._content_client = content_client

    @provide
    def content_client(self) -> ContentClientProtocol:
        return self._content_client
