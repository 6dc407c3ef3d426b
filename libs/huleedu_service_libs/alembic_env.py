"""The body of every service's alembic ``env.py`` (async engine, asyncpg).

The URL comes from ``ALEMBIC_DATABASE_URL`` (set by the launcher and the tests), else
from ``-x database_url=…``, else from the service's settings.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from huleedu_service_libs.settings import to_asyncpg_url


def run_alembic_env(target_metadata: MetaData, default_url: Callable[[], str]) -> None:
    url = (
        os.environ.get("ALEMBIC_DATABASE_URL")
        or context.get_x_argument(as_dictionary=True).get("database_url")
        or default_url()
    )
    url = to_asyncpg_url(url)

    def do_migrations(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def run_online() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_migrations)
        await engine.dispose()

    asyncio.run(run_online())
