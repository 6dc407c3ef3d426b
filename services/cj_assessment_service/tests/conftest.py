"""Fixtures of the CJ Assessment Service tests.

* ``content_service``: ONE real Content Service process for the session
  (``python -m services.content_service``, which migrates its own database on start;
  a small size limit; an API token, so that token forwarding is exercised by every test).
* ``cj_database_url``: a session database built by the CJ alembic migrations.
* ``clean_databases``: per test, empties the CJ tables and the Content Service's blobs.
* ``cj_client``: the CJ app in-process (Quart test client) wired to the real Content
  Service; ``make_cj_app`` builds variants (other settings, another content client).
* ``cj_service_process``: the CJ app as a real process (for restart tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from huleedu_service_libs.database import create_engine
from huleedu_service_libs.postgres_server import PostgresServer, drop_database
from huleedu_service_libs.settings import to_asyncpg_url
from huleedu_service_libs.testing.fixtures import alembic_upgrade, new_database
from huleedu_service_libs.testing.processes import ServiceProcess, free_port
from services.cj_assessment_service.app import create_app
from services.cj_assessment_service.config import CJAssessmentServiceSettings
from services.cj_assessment_service.protocols import ContentClientProtocol

CJ_ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"

CONTENT_TOKEN = "content-service-test-token"
CONTENT_LIMIT_BYTES = 64 * 1024
CJ_TABLES = ("anchor_essay_references", "assessment_assignments", "grade_scales")

# A custom 12-grade scale (the built-ins have 8 and 9 grades).
TWELVE_GRADES = ["F", "E-", "E", "E+", "D-", "D", "D+", "C-", "C", "C+", "B", "A"]


# --- the Content Service, as a real process --------------------------------------------


@dataclass
class RunningContentService:
    process: ServiceProcess
    database_url: str
    token: str | None
    max_content_bytes: int

    @property
    def base_url(self) -> str:
        return self.process.base_url


def content_service_env(database_url: str, port: int, *, token: str | None, max_bytes: int) -> dict[str, str]:
    """Every setting explicit, so neither the shell nor a ``.env`` file changes what tests see."""
    return {
        "CONTENT_SERVICE_DATABASE_URL": database_url,
        "CONTENT_SERVICE_HOST": "127.0.0.1",
        "CONTENT_SERVICE_PORT": str(port),
        "CONTENT_SERVICE_ENVIRONMENT": "test",
        "CONTENT_SERVICE_MAX_CONTENT_BYTES": str(max_bytes),
        "CONTENT_SERVICE_LOG_FORMAT": "json",
        "CONTENT_SERVICE_LOG_LEVEL": "INFO",
        "CONTENT_SERVICE_API_TOKEN": token or "",
    }


def start_content_service(
    database_url: str,
    *,
    log_path: Path | None = None,
    token: str | None = CONTENT_TOKEN,
    max_bytes: int = CONTENT_LIMIT_BYTES,
) -> RunningContentService:
    port = free_port()
    process = ServiceProcess(
        "services.content_service",
        env=content_service_env(database_url, port, token=token, max_bytes=max_bytes),
        port=port,
        log_path=log_path,
    )
    process.start()
    return RunningContentService(process, database_url, token, max_bytes)


@dataclass
class SessionStack:
    cj_database_url: str
    content: RunningContentService


@pytest.fixture(scope="session")
async def _session_stack(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SessionStack]:
    """Both session databases; the CJ one migrated while the Content Service starts (it
    migrates its own database on start-up, as in production) — in parallel, to save time."""
    cj_name, cj_url = await new_database(postgres_server, "test_cj")
    content_name, content_url = await new_database(postgres_server, "test_cj_content")
    log_path = tmp_path_factory.mktemp("cj_content_service") / "content_service.log"
    migrated, content = await asyncio.gather(
        asyncio.to_thread(alembic_upgrade, CJ_ALEMBIC_INI, cj_url),
        asyncio.to_thread(start_content_service, content_url, log_path=log_path),
        return_exceptions=True,
    )
    if isinstance(migrated, BaseException) or isinstance(content, BaseException):
        if isinstance(content, RunningContentService):
            content.process.stop()
        raise migrated if isinstance(migrated, BaseException) else content  # type: ignore[misc]
    yield SessionStack(cj_database_url=cj_url, content=content)
    content.process.stop()
    await drop_database(postgres_server.admin_url, cj_name)
    await drop_database(postgres_server.admin_url, content_name)


@pytest.fixture(scope="session")
def content_service(_session_stack: SessionStack) -> RunningContentService:
    """The session's real Content Service process (token required, small size limit)."""
    return _session_stack.content


@pytest.fixture(scope="session")
def cj_database_url(_session_stack: SessionStack) -> str:
    """The session's CJ database, built only by the service's alembic migrations."""
    return _session_stack.cj_database_url


# --- database helpers -------------------------------------------------------------------


async def execute_sql(
    database_url: str, sql: str, params: dict[str, Any] | list[dict[str, Any]] | None = None
) -> list[Any]:
    """Run one statement (a list of params: once per item) committed, and return its rows, if any."""
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def count_anchor_rows(database_url: str, assignment_id: str | None = None) -> int:
    if assignment_id is None:
        rows = await execute_sql(database_url, "SELECT count(*) FROM anchor_essay_references")
    else:
        rows = await execute_sql(
            database_url,
            "SELECT count(*) FROM anchor_essay_references WHERE assignment_id = :a",
            {"a": assignment_id},
        )
    return int(rows[0][0])


async def wipe_blobs(content_database_url: str, storage_ids: list[str] | None = None) -> int:
    """Simulate the lost store: delete blobs straight from the Content Service's database."""
    if storage_ids is None:
        rows = await execute_sql(content_database_url, "DELETE FROM stored_content RETURNING content_id")
    else:
        rows = await execute_sql(
            content_database_url,
            "DELETE FROM stored_content WHERE content_id = ANY(:ids) RETURNING content_id",
            {"ids": storage_ids},
        )
    return len(rows)


@pytest.fixture
async def clean_databases(cj_database_url: str, content_service: RunningContentService) -> str:
    """Empty CJ tables and Content Service blobs before the test; returns the CJ database URL."""
    await execute_sql(cj_database_url, f"TRUNCATE {', '.join(CJ_TABLES)} RESTART IDENTITY CASCADE")
    await execute_sql(content_service.database_url, "TRUNCATE stored_content")
    return cj_database_url


# --- the CJ app -------------------------------------------------------------------------


def make_cj_settings(
    database_url: str, content: RunningContentService | None = None, **overrides: object
) -> CJAssessmentServiceSettings:
    values: dict[str, object] = {
        "environment": "test",
        "log_format": "json",
        "database_url": database_url,
        "content_service_url": content.base_url if content else "http://127.0.0.1:1",
        "content_service_token": content.token if content else None,
        # Few, quick retries keep the outage tests fast.
        "content_max_attempts": 2,
        "content_retry_initial_backoff_seconds": 0.05,
        "content_retry_max_backoff_seconds": 0.1,
        "content_connect_timeout_seconds": 2.0,
        "content_read_timeout_seconds": 10.0,
        **overrides,
    }
    return CJAssessmentServiceSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def make_cj_app(clean_databases: str, content_service: RunningContentService):
    """``async with make_cj_app(**settings_overrides) as client:`` an in-process CJ app."""

    @asynccontextmanager
    async def factory(*, content_client: ContentClientProtocol | None = None, **overrides: object):
        database_url = str(overrides.pop("database_url", clean_databases))
        settings = make_cj_settings(database_url, content_service, **overrides)
        app = create_app(settings, content_client=content_client, configure_logs=False)
        async with app.test_app() as test_app:
            yield test_app.test_client()

    return factory


@pytest.fixture
async def cj_client(make_cj_app):
    async with make_cj_app() as client:
        yield client


def cj_service_env(database_url: str, content: RunningContentService, port: int, **overrides: str) -> dict[str, str]:
    return {
        "CJ_ASSESSMENT_SERVICE_DATABASE_URL": database_url,
        "CJ_ASSESSMENT_SERVICE_HOST": "127.0.0.1",
        "CJ_ASSESSMENT_SERVICE_PORT": str(port),
        "CJ_ASSESSMENT_SERVICE_ENVIRONMENT": "test",
        "CJ_ASSESSMENT_SERVICE_LOG_FORMAT": "json",
        "CJ_ASSESSMENT_SERVICE_API_TOKEN": "",
        "CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL": content.base_url,
        "CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN": content.token or "",
        **overrides,
    }


@pytest.fixture
def cj_service_process(
    clean_databases: str, content_service: RunningContentService, tmp_path: Path
) -> Iterator[ServiceProcess]:
    """A real ``python -m services.cj_assessment_service`` process (migrate, then serve)."""
    port = free_port()
    process = ServiceProcess(
        "services.cj_assessment_service",
        env=cj_service_env(clean_databases, content_service, port),
        port=port,
        log_path=tmp_path / "cj_assessment_service.log",
    )
    process.start()
    yield process
    process.stop()


# --- small API helpers ------------------------------------------------------------------


async def put_scale(client, scale_id: str, grades: list[str], **extra: Any) -> dict[str, Any]:
    response = await client.put(f"/api/v1/grade-scales/{scale_id}", json={"grades": grades, **extra})
    assert response.status_code in (200, 201), await response.get_data(as_text=True)
    return await response.get_json()


async def put_assignment(client, assignment_id: str, grade_scale: str, **extra: Any) -> dict[str, Any]:
    body = {"grade_scale": grade_scale, "instructions": "Write an argumentative essay.", **extra}
    response = await client.put(f"/api/v1/assignments/{assignment_id}", json=body)
    assert response.status_code in (200, 201), await response.get_data(as_text=True)
    return await response.get_json()


def anchor_text(grade: str, version: int = 1) -> str:
    return f"Anchor essay for grade {grade} (version {version}).\n" + f"Paragraph {grade}. " * 40
