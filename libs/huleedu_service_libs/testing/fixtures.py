"""pytest fixtures: one real PostgreSQL per test session, databases built by alembic."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from huleedu_service_libs.postgres_server import PostgresServer, create_database, drop_database, provision_test_server
from huleedu_service_libs.testing.processes import REPO_ROOT, python_path_env


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = provision_test_server()
    yield server
    server.stop()


def alembic_upgrade(alembic_ini: Path, database_url: str, revision: str = "head") -> None:
    """Run the service's real migrations, exactly as the start-up command does."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(alembic_ini), "upgrade", revision],
        env={**os.environ, "ALEMBIC_DATABASE_URL": database_url, "PYTHONPATH": python_path_env()},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"alembic upgrade {revision} failed:\n{result.stderr}")


async def new_database(server: PostgresServer, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = await create_database(server.admin_url, name)
    return name, url


@pytest.fixture
async def fresh_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """An empty database (no schema) for migration tests; dropped afterwards."""
    name, url = await new_database(postgres_server, "test_fresh")
    yield url
    await drop_database(postgres_server.admin_url, name)
