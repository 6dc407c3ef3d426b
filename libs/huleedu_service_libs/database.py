"""Database helpers shared by the services: engine creation and outage mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from huleedu_service_libs.errors import ServiceUnavailableError
from huleedu_service_libs.logging_setup import get_logger

logger = get_logger(__name__)


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, echo: bool = False) -> AsyncEngine:
    # pool_pre_ping: after a database restart (or pg_terminate_backend) the pool's
    # connections are dead; pinging on checkout replaces them instead of failing a request.
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=10,
        echo=echo,
    )


def is_connection_problem(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, OSError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@asynccontextmanager
async def database_errors_as_unavailable() -> AsyncIterator[None]:
    """Turn 'cannot reach the database' into a 503 envelope instead of a 500."""
    try:
        yield
    except (DBAPIError, PoolTimeoutError, ConnectionError, OSError, asyncio.TimeoutError) as exc:
        if isinstance(exc, asyncio.TimeoutError) or is_connection_problem(exc):
            logger.warning("database_unavailable", error_type=type(exc).__name__, error=str(exc)[:300])
            raise ServiceUnavailableError(
                "The database is unavailable; retry shortly.", details={"reason": type(exc).__name__}
            ) from exc
        raise
