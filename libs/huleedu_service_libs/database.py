"""Database helpers shared by the services: engine creation and outage mapping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from huleedu_service_libs.errors import ServiceUnavailableError
from huleedu_service_libs.logging_setup import get_logger

logger = get_logger(__name__)

# asyncpg errors (raised when a repository uses the driver connection directly) that mean
# "the database cannot be reached right now" rather than "the query is wrong".
_ASYNCPG_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,  # 08xxx, incl. connection closed mid-operation
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections, disk full
)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    echo: bool = False,
    autocommit: bool = False,
    pre_ping: Literal["query", "socket"] = "query",
    idle_ping_after: float = 30.0,
) -> AsyncEngine:
    """The async engine every service uses.

    Pre-ping: after a database restart (or pg_terminate_backend) the pool's connections
    are dead; checking them on checkout replaces them instead of failing a request.

    - ``pre_ping="query"``: SQLAlchemy's ``pool_pre_ping`` — one query round trip (three
      with asyncpg outside autocommit) on every checkout.
    - ``pre_ping="socket"``: on checkout, a connection whose socket the server has closed
      (restart, pg_terminate_backend) is replaced without any round trip, and one idle for
      longer than ``idle_ping_after`` seconds is pinged with a query first (a peer that
      vanished without closing). For services whose requests are one short statement.

    ``autocommit=True`` is for repositories whose every write is one statement: PostgreSQL
    commits each statement before it answers, so no BEGIN/COMMIT round trips are spent.
    """
    extra: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = create_async_engine(
        url,
        pool_pre_ping=pre_ping == "query",
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=10,
        echo=echo,
        **extra,
    )
    if pre_ping == "socket":
        _install_socket_pre_ping(engine, idle_ping_after)
    return engine


def _install_socket_pre_ping(engine: AsyncEngine, idle_ping_after: float) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _remember_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check_alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            # The pool disposes of it and checks out (or opens) another one.
            raise DisconnectionError("connection was closed by the server")
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is not None and time.monotonic() - checked_in_at > idle_ping_after:
            try:
                dbapi_connection.ping()
            except Exception as exc:
                raise DisconnectionError(f"ping failed: {type(exc).__name__}") from exc


def _driver_error(exc: BaseException) -> BaseException | None:
    """The asyncpg exception behind a SQLAlchemy one or behind the dialect's PEP 249
    wrapper (``orig``, then the ``__cause__`` chain)."""
    current: BaseException | None = getattr(exc, "orig", None) or exc.__cause__
    for _ in range(5):
        if current is None:
            return None
        if type(current).__module__.startswith("asyncpg"):
            return current
        current = getattr(current, "orig", None) or current.__cause__
    return None


def is_connection_problem(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, OSError)):
        return True
    if not type(exc).__module__.startswith("asyncpg"):
        # SQLAlchemy (DBAPIError) and its asyncpg dialect (PEP 249 ``Error``) wrap some
        # driver errors, e.g. "too many connections" while connecting: judge by the
        # driver's exception.
        driver_error = _driver_error(exc)
        if driver_error is not None and is_connection_problem(driver_error):
            return True
    if isinstance(exc, _ASYNCPG_UNAVAILABLE):
        return True
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return "closed" in str(exc)  # "connection is closed"; other InterfaceErrors are bugs
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state …; another operation is in progress": the server's
        # termination notice arrived on an idle pooled connection just before its socket
        # closed. (A connection is only ever used by one coroutine at a time.)
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@asynccontextmanager
async def database_errors_as_unavailable() -> AsyncIterator[None]:
    """Turn 'cannot reach the database' into a 503 envelope instead of a 500."""
    try:
        yield
    except Exception as exc:
        # Anything else (a bug, a constraint violation) propagates unchanged.
        if isinstance(exc, asyncio.TimeoutError) or is_connection_problem(exc):
            logger.warning("database_unavailable", error_type=type(exc).__name__, error=str(exc)[:300])
            raise ServiceUnavailableError(
                "The database is unavailable; retry shortly.", details={"reason": type(exc).__name__}
            ) from exc
        raise
