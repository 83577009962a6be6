"""Fixtures: a fresh database per test, on SQLite (a temporary file) and on PostgreSQL.

For PostgreSQL each test gets its own database, ``slawatch_test_<random>``, created through the admin URL
(``SLAWATCH_TEST_PG_URL``, default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) and dropped
afterwards, so concurrent test sessions never meet. Without a reachable server the PostgreSQL tests are
skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from monitor.storage import Database, Repository, default_database_url

PG_ADMIN_URL = os.environ.get("SLAWATCH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PG_START_HINT = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def _unreachable(reason: str) -> None:
    where = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
    message = f"PostgreSQL at {where} is unreachable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; it is required under CI=true. {PG_START_HINT}")
    pytest.skip(f"{message}; {PG_START_HINT}")


async def _pg_url() -> AsyncIterator[str]:
    """Create a uniquely named database, yield its URL, drop it."""
    name = f"slawatch_test_{secrets.token_hex(6)}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except (OSError, SQLAlchemyError) as exc:
            _unreachable(str(getattr(exc, "orig", exc)).splitlines()[0])
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except (OSError, SQLAlchemyError):
            pass
        await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each supported kind."""
    if request.param == "sqlite":
        yield default_database_url(tmp_path / "data")
        return
    async for url in _pg_url():
        yield url


@pytest.fixture
async def empty_db(database_url: str) -> AsyncIterator[Database]:
    """A connected database with no schema."""
    db = Database(database_url)
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def db(empty_db: Database) -> Database:
    """A connected database upgraded to head."""
    await empty_db.upgrade()
    return empty_db


@pytest.fixture
def repo(db: Database) -> Repository:
    return db.repository()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory for the ``slawatch`` command (``tests/cli.py``): data in ``tmp_path/data`` (SQLite)."""
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SLAWATCH_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    logging.getLogger().handlers.clear()  # the CLI's handler points at the runner's closed stream
