"""Alembic environment for slawatch, async-capable.

Three ways in:

* programmatically (:meth:`monitor.storage.database.Database.upgrade`): the caller passes a synchronous
  connection (from ``AsyncConnection.run_sync``) in ``config.attributes["connection"]``; logging is left
  alone;
* from the ``alembic`` command: the URL comes from ``-x url=...``, else ``SLAWATCH_DATABASE_URL``, else
  ``sqlalchemy.url`` in ``alembic.ini``; an async engine is created and the migrations run inside
  ``run_sync``;
* offline (``alembic ... upgrade head --sql``): the SQL is printed for the dialect of that URL.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from monitor.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("SLAWATCH_DATABASE_URL")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "no database URL: pass -x url=sqlite+aiosqlite:///path/slawatch.db "
            "(or postgresql+asyncpg://...) or set SLAWATCH_DATABASE_URL"
        )
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run_with(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_with)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
