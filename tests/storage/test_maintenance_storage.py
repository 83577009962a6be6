"""The ``maintenance_requests`` table (migration 0003) on SQLite and PostgreSQL: it matches tables.py, it
downgrades and upgrades again, and its functions (store once, decide once, undo a decision)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from monitor.errors import StorageError
from monitor.storage import Database, head_revision
from monitor.storage.database import _alembic_config
from monitor.storage.maintenance import (
    MaintenanceRequest,
    decide_request,
    insert_request,
    list_requests,
    load_request,
    undo_decision,
)
from monitor.storage.tables import Base

T0 = datetime(2026, 3, 25, tzinfo=UTC)
TABLE = "maintenance_requests"


def record(rid: str = "MR-0123456789ab", **kw: object) -> MaintenanceRequest:
    values: dict[str, object] = {
        "id": rid,
        "scope": "T01-B2",
        "start": T0,
        "end": T0 + timedelta(hours=2),
        "reason": "splice",
        "requested_by": "operator-1",
        "requested_at": T0 - timedelta(days=1),
    }
    values.update(kw)
    return MaintenanceRequest(**values)  # type: ignore[arg-type]


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def _downgrade(conn: Connection, revision: str) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, revision)


async def test_migration_0003_matches_tables(db: Database) -> None:
    assert await db.current_revision() == head_revision()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(TABLE)})
        indexes = await conn.run_sync(lambda c: {ix["name"] for ix in inspect(c).get_indexes(TABLE)})
    assert columns == set(Base.metadata.tables[TABLE].columns.keys())
    assert indexes == {"ix_maintenance_requests_status"}


async def test_downgrade_to_0002_and_up_again(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.run_sync(_downgrade, "0002")
        await conn.commit()
        assert TABLE not in await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert await db.current_revision() == "0002"
    await db.upgrade()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_store_once_decide_once(db: Database) -> None:
    stored, created = await insert_request(db, record())
    assert created and stored == record()
    again, created = await insert_request(db, record(requested_at=T0))
    assert not created and again == record()  # the first one stands
    assert await load_request(db, "MR-nope") is None

    decided_at = T0 + timedelta(hours=3)
    assert await decide_request(db, stored.id, "consented", "assessor-1", decided_at, "ok")
    assert not await decide_request(db, stored.id, "refused", "assessor-2", decided_at)
    assert not await decide_request(db, "MR-nope", "refused", "assessor-2", decided_at)
    got = await load_request(db, stored.id)
    assert got is not None
    assert (got.status, got.decided_by, got.decided_at, got.note) == ("consented", "assessor-1", decided_at, "ok")
    assert got.decided_at is not None and got.decided_at.tzinfo is UTC
    with pytest.raises(ValueError):
        await decide_request(db, stored.id, "requested", "x", decided_at)

    await undo_decision(db, stored.id, "consented", decided_at)
    assert await load_request(db, stored.id) == record()

    await insert_request(db, record("MR-later", requested_at=T0 + timedelta(hours=1)))
    assert await decide_request(db, "MR-later", "refused", "assessor-1", decided_at)
    assert [r.id for r in await list_requests(db)] == [stored.id, "MR-later"]
    assert [r.id for r in await list_requests(db, "refused")] == ["MR-later"]
    assert (await list_requests(db, "refused"))[0].late is True
    assert record().late is False


async def test_the_database_refuses_bad_rows(db: Database) -> None:
    with pytest.raises(StorageError):
        await insert_request(db, record(end=T0))
    with pytest.raises(StorageError):
        await insert_request(db, record(status="maybe"))
    assert await list_requests(db) == []
