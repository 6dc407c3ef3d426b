"""dishka providers of the CJ Assessment Service: settings, engine, repositories, Content Service client,
and the batch pipeline (batch repository, submission policy, background worker pool)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from dishka import Provider, Scope, provide
from sqlalchemy.ext.asyncio import AsyncEngine

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.http_client import create_http_client
from services.cj_assessment_service.batches_logic import BatchPolicy
from services.cj_assessment_service.cj_core_logic.worker import BatchWorkerPool, WorkerSettings, WorkSignal
from services.cj_assessment_service.config import CJAssessmentServiceSettings
from services.cj_assessment_service.implementations.batch_repository import PostgresBatchRepository
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
from services.cj_assessment_service.protocols_batches import BatchRepositoryProtocol


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

    # --- batches: repository, submission policy, background workers -------------------------

    @provide
    def batches(self, engine: AsyncEngine) -> BatchRepositoryProtocol:
        return PostgresBatchRepository(engine)

    @provide
    def batch_policy(self, settings: CJAssessmentServiceSettings) -> BatchPolicy:
        return BatchPolicy(
            judge_defaults=settings.judge_defaults,
            allowed_judge_base_urls=tuple(settings.judge_batch_base_urls),
            default_comparisons_per_essay=settings.default_comparisons_per_essay,
            max_comparisons_limit=settings.max_comparisons_limit,
            max_essays=settings.max_essays_per_batch,
        )

    @provide
    def work_signal(self) -> WorkSignal:
        return WorkSignal()

    @provide
    def worker_pool(
        self,
        settings: CJAssessmentServiceSettings,
        batches: BatchRepositoryProtocol,
        assignments: AssignmentRepositoryProtocol,
        anchors: AnchorRepositoryProtocol,
        grade_scales: GradeScaleRepositoryProtocol,
        content: ContentClientProtocol,
    ) -> BatchWorkerPool:
        return BatchWorkerPool(
            batches=batches,
            assignments=assignments,
            anchors=anchors,
            grade_scales=grade_scales,
            content=content,
            worker_count=settings.worker_count,
            settings=WorkerSettings(
                judge_defaults=settings.judge_defaults,
                judge_concurrency=settings.judge_concurrency,
                rate_limit_per_second=settings.judge_rate_limit_per_second,
                poll_interval_seconds=settings.worker_poll_interval_seconds,
                lease_seconds=settings.worker_lease_seconds,
                min_comparisons_per_essay=settings.min_comparisons_per_essay,
                stability_threshold=settings.stability_threshold,
                failure_rate_threshold=settings.failure_rate_threshold,
                failure_min_attempts=settings.failure_min_attempts,
                prior_sd=settings.prior_sd,
                transient_retry_seconds=settings.worker_retry_seconds,
                content_fetch_concurrency=settings.content_check_concurrency,
            ),
        )


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
