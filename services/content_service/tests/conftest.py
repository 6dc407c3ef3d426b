"""Fixtures of the Content Service tests: settings, apps on the mock and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.postgres_server import PostgresServer, drop_database
from huleedu_service_libs.testing.fixtures import alembic_upgrade, new_database
from huleedu_service_libs.testing.processes import ServiceProcess, free_port
from services.content_service.app import create_app
from services.content_service.config import ContentServiceSettings
from services.content_service.di import create_content_engine
from services.content_service.implementations.mock_repository import MockContentRepository
from services.content_service.implementations.postgres_repository import PostgresContentRepository

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TEST_LIMIT_BYTES = 64 * 1024


def make_settings(database_url: str | None = None, **overrides: object) -> ContentServiceSettings:
    values: dict[str, object] = {
        "environment": "test",
        "max_content_bytes": TEST_LIMIT_BYTES,
        "log_format": "json",
        "database_url": database_url or "postgresql://unused@127.0.0.1:1/unused",
        **overrides,
    }
    return ContentServiceSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def mock_repository() -> MockContentRepository:
    return MockContentRepository()


@pytest.fixture
async def mock_client(mock_repository: MockContentRepository):
    app = create_app(make_settings(), repository=mock_repository, configure_logs=False)
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture(scope="session")
async def content_database_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A database for this session, built by the service's alembic migrations."""
    name, url = await new_database(postgres_server, "test_content")
    alembic_upgrade(ALEMBIC_INI, url)
    yield url
    await drop_database(postgres_server.admin_url, name)


@pytest.fixture
async def clean_content_database(content_database_url: str) -> AsyncIterator[str]:
    engine = create_engine(ContentServiceSettings(_env_file=None, database_url=content_database_url).sqlalchemy_url)  # type: ignore[call-arg]
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE stored_content"))
    await engine.dispose()
    yield content_database_url


@pytest.fixture
async def pg_repository(clean_content_database: str) -> AsyncIterator[PostgresContentRepository]:
    engine = create_content_engine(make_settings(clean_content_database))  # as the service builds it
    yield PostgresContentRepository(engine)
    await engine.dispose()


@pytest.fixture
async def pg_client(clean_content_database: str):
    app = create_app(make_settings(clean_content_database), configure_logs=False)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def count_rows(database_url: str) -> int:
    engine = create_engine(make_settings(database_url).sqlalchemy_url)
    async with engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM stored_content"))).scalar_one()
    await engine.dispose()
    return int(count)


def content_service_env(database_url: str, port: int, **overrides: str) -> dict[str, str]:
    """Environment of a real ``python -m services.content_service`` process (every setting explicit,
    so neither a developer's shell nor a ``.env`` file changes what the tests see)."""
    return {
        "CONTENT_SERVICE_DATABASE_URL": database_url,
        "CONTENT_SERVICE_HOST": "127.0.0.1",
        "CONTENT_SERVICE_PORT": str(port),
        "CONTENT_SERVICE_ENVIRONMENT": "test",
        "CONTENT_SERVICE_MAX_CONTENT_BYTES": str(TEST_LIMIT_BYTES),
        "CONTENT_SERVICE_LOG_FORMAT": "json",
        "CONTENT_SERVICE_LOG_LEVEL": "INFO",
        "CONTENT_SERVICE_API_TOKEN": "",
        **overrides,
    }


def content_service_process(database_url: str, *, log_path: Path | None = None, **overrides: str) -> ServiceProcess:
    """A (not yet started) real Content Service process, served exactly as in production."""
    port = free_port()
    return ServiceProcess(
        "services.content_service",
        env=content_service_env(database_url, port, **overrides),
        port=port,
        log_path=log_path,
    )


@pytest.fixture(scope="session")
def content_service(content_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One real service process for the session, on the session database, logging JSON to a file.

    Tests that count rows use ``clean_content_database`` too (it truncates the same table).
    """
    log_path = tmp_path_factory.mktemp("content_service") / "service.log"
    process = content_service_process(content_database_url, log_path=log_path)
    process.start()
    yield process
    process.stop()
