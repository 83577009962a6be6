"""``sqlite_db``: the alert tests that drive an outside receiver (broker, Alertmanager, robots, apprise, the ack
page) run on one database kind, a SQLite file in ``tmp_path`` upgraded to head; the outbox's own tests use the
root ``db`` (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.storage import Database, default_database_url


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(default_database_url(tmp_path / "data"))
    await database.connect()
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()
