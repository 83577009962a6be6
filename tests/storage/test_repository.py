"""The storage layer against SQLite and PostgreSQL: schema upgrades, events, inventory, incidents, reports,
tokens, the audit log and evidence files."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from monitor.confirmation import PollRun
from monitor.errors import StorageError
from monitor.events import (
    AckEvent,
    Event,
    ExclusionEvent,
    ExclusionStatus,
    ExplanationEvent,
    FindingEvent,
    MaintenanceEvent,
    NodeState,
    OnsiteEvent,
    PollEvent,
    StateEvent,
)
from monitor.incidents import ExclusionStep, IncidentView, TimelineEntry, TimelineKind
from monitor.inventory import Inventory, Node, NodeKind, SnmpSettings
from monitor.sample import sample_inventory
from monitor.storage import Database, Repository, default_database_url, display_url, head_revision
from monitor.storage.database import packaged_head
from monitor.storage.tables import Base

T0 = datetime(2026, 10, 3, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
TABLES = {
    "events",
    "poll_runs",
    "nodes",
    "contracts",
    "incidents",
    "incident_members",
    "incident_timeline",
    "reports",
    "tokens",
    "audit_log",
    "evidence",
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def state(node: str, minutes: float, st: NodeState, known: float | None = None) -> StateEvent:
    return StateEvent(at=at(minutes), node=node, state=st, known_at=None if known is None else at(known))


# ------------------------------------------------------------------------------------------ schema


async def test_upgrade_from_empty_twice(empty_db: Database) -> None:
    assert await empty_db.current_revision() is None
    with pytest.raises(StorageError, match="upgrade it first"):
        await empty_db.check_schema()
    await empty_db.upgrade()
    assert await empty_db.current_revision() == head_revision()
    await empty_db.upgrade()  # idempotent
    assert await empty_db.current_revision() == head_revision()
    await empty_db.check_schema()
    async with empty_db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert names >= TABLES


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    """``upgrade`` skips Alembic for a database at this head: it must be the head Alembic computes."""
    assert packaged_head() == head_revision()


async def test_an_older_database_is_still_upgraded(empty_db: Database) -> None:
    await empty_db.upgrade("0001")
    await empty_db.upgrade()
    assert await empty_db.current_revision() == head_revision()


async def test_migration_matches_models(db: Database) -> None:
    """The hand-written migration and tables.py describe the same schema."""

    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_repository_on_a_database_without_schema(empty_db: Database) -> None:
    with pytest.raises(StorageError, match="does not have the slawatch schema"):
        await empty_db.repository().load_events()


async def test_unreachable_database_names_the_url_without_password() -> None:
    db = Database("postgresql+asyncpg://slawatch:s3cret-pw@127.0.0.1:1/nowhere")
    with pytest.raises(StorageError) as info:
        await db.connect()
    message = str(info.value)
    assert message.startswith("cannot reach the database at postgresql+asyncpg://slawatch:***@127.0.0.1:1/")
    assert "s3cret-pw" not in message
    await db.close()


def test_urls() -> None:
    assert (
        default_database_url(Path("/var/lib/slawatch")) == "sqlite+aiosqlite:////var/lib/slawatch/slawatch.db"
    )
    assert display_url("postgresql+asyncpg://u:pw@h/db") == "postgresql+asyncpg://u:***@h/db"
    with pytest.raises(StorageError, match="unsupported database URL"):
        Database("postgresql://u:pw@h/db")
    with pytest.raises(StorageError, match="not a database URL"):
        Database("not a url")


# ------------------------------------------------------------------------------------------ events


async def test_append_events_dedupes(repo: Repository) -> None:
    e1 = state("CPE-0001", 0, NodeState.DOWN)
    e2 = state("CPE-0001", 10, NodeState.UP)
    assert await repo.append_events([e1, e1], "replay:a.jsonl:1") == [e1]
    assert await repo.append_events([e1, e2], "replay:a.jsonl:2") == [e2]
    assert await repo.append_events([e2, e1], "api:crew") == []
    assert await repo.count_events() == 2
    assert await repo.load_events() == [e1, e2]


async def test_load_events_in_known_then_ingestion_order(repo: Repository) -> None:
    # A confirmation dated at its run's first poll but known when the run completes (SPEC §2).
    backdated = state("CPE-0002", 0, NodeState.DOWN, known=3)
    ack = AckEvent(at=at(1), node="CPE-0002", by="crew")
    late_ack = AckEvent(at=at(3), node="CPE-0002", by="second")  # same known time, ingested later
    early = state("CPE-0003", 2, NodeState.DOWN)
    await repo.append_events([backdated, late_ack], "collector")
    await repo.append_events([early, ack], "api:crew")
    assert await repo.load_events() == [ack, early, backdated, late_ack]
    assert await repo.load_events(until_known=at(2)) == [ack, early]
    assert await repo.load_events(until_known=at(3).astimezone(CST)) == [ack, early, backdated, late_ack]
    assert await repo.load_events(until_known=at(0.5)) == []


async def test_every_event_type_round_trips(repo: Repository) -> None:
    events: list[Event] = [
        state("CPE-0001", 0, NodeState.UNKNOWN),
        PollEvent(at=at(0), node="CPE-0001", ok=False, rtt_ms=None, loss=1.0),
        AckEvent(at=at(1), incident="CPE-0001@2026-10-03T00:00:00Z", by="crew"),
        OnsiteEvent(at=at(2), node="CPE-0001", by="crew"),
        ExplanationEvent(at=at(3), node="CPE-0001", text="fibre cut by road works", by="op"),
        ExclusionEvent(at=at(4), node="CPE-0001", status=ExclusionStatus.APPROVED, cause="road works"),
        MaintenanceEvent(at=at(-60), start=at(5), end=at(65), scope="T01", reason="upgrade"),
        FindingEvent(at=at(6), item="4c", points=Decimal("5.50"), note="complaint"),
    ]
    assert await repo.append_events(events, "replay:all.jsonl") == events
    loaded = await repo.load_events()
    assert sorted(loaded, key=lambda e: e.id) == sorted(events, key=lambda e: e.id)
    assert [e.id for e in loaded] == [e.id for e in sorted(events, key=lambda e: e.known)]
    assert all(e.at.tzinfo is UTC for e in loaded)


async def test_many_events_in_chunks(repo: Repository) -> None:
    events = [state(f"CPE-{i % 50:04d}", i, NodeState.DOWN if i % 2 else NodeState.UP) for i in range(1600)]
    assert len(await repo.append_events(events[:700], "replay:big.jsonl")) == 700
    assert await repo.append_events(events, "replay:big.jsonl") == events[700:]
    assert await repo.load_events() == events


# --------------------------------------------------------------------------------------- poll runs


async def test_poll_runs(repo: Repository) -> None:
    assert await repo.load_poll_runs() == {}
    runs = {
        "CPE-0001": PollRun(ok=False, count=2, since=at(0), last_poll=at(1)),
        "CPE-0002": PollRun(ok=True, count=1, since=at(0).astimezone(CST), last_poll=at(0)),
    }
    await repo.save_poll_runs(runs)
    assert await repo.load_poll_runs() == runs
    more = {"CPE-0001": PollRun(ok=False, count=3, since=at(0), last_poll=at(2))}
    await repo.save_poll_runs(more)
    assert await repo.load_poll_runs() == {**runs, **more}
    loaded = await repo.load_poll_runs()
    assert loaded["CPE-0002"].since.tzinfo is UTC


# --------------------------------------------------------------------------------------- inventory


async def test_inventory_round_trip_and_diff(repo: Repository) -> None:
    assert len(await repo.load_inventory()) == 0
    inv = sample_inventory()
    started = time.perf_counter()
    diff = await repo.save_inventory(inv)
    loaded = await repo.load_inventory()
    elapsed = time.perf_counter() - started
    assert elapsed < 20, f"saving and loading the sample inventory took {elapsed:.1f} s"
    assert diff.added == tuple(inv) and not diff.changed and not diff.removed
    assert list(loaded) == list(inv)
    assert loaded.nodes() == inv.nodes()
    assert len(loaded.channels) == len(inv.channels)
    with_snmp = [n for n in loaded.values() if n.snmp is not None]
    assert with_snmp and all(n.snmp == inv[n.id].snmp for n in with_snmp)
    assert not await repo.save_inventory(inv)  # nothing changed

    nodes = inv.nodes()
    cpe = next(n for n in nodes if n.kind is NodeKind.CPE and n.monthly_fee is not None)
    assert cpe.monthly_fee is not None
    fee = cpe.monthly_fee + Decimal("0.01")
    removed = next(n for n in nodes if n.kind is NodeKind.CAMERA)
    changed = dataclasses.replace(cpe, name="renamed", monthly_fee=fee)
    added = Node(id="CAM-NEW", kind=NodeKind.CAMERA, parent=cpe.id, channels=2, commissioned=at(0))
    new_nodes = [changed if n.id == cpe.id else n for n in nodes if n.id != removed.id]
    new_nodes = [new_nodes[-1], *new_nodes[:-1], added]  # and an order change
    new_inv = Inventory(new_nodes)
    diff = await repo.save_inventory(new_inv)
    assert (diff.added, diff.changed, diff.removed) == (("CAM-NEW",), (cpe.id,), (removed.id,))
    loaded = await repo.load_inventory()
    assert list(loaded) == list(new_inv)
    assert loaded[cpe.id].monthly_fee == fee
    assert loaded["CAM-NEW"].commissioned == at(0)


async def test_inventory_values_round_trip_exactly(repo: Repository) -> None:
    nodes = [
        Node(id="T01", kind=NodeKind.AREA, name="镇一"),
        Node(
            id="CPE-1",
            kind=NodeKind.CPE,
            parent="T01",
            address="127.10.0.1",
            bandwidth_mbps=100,
            monthly_fee=Decimal("123.456"),
            in_county=False,
            commissioned=datetime(2026, 1, 1, tzinfo=CST),
            decommissioned=datetime(2026, 10, 20, 12, 30, 0, 250000, tzinfo=CST),
            snmp=SnmpSettings(
                version="3", user="u", auth_protocol="SHA", auth_key="ak", priv_protocol="AES", priv_key="pk"
            ),
        ),
        Node(id="NVR-1", kind=NodeKind.NVR, parent="CPE-1", channels=16, in_county=None),
    ]
    await repo.save_inventory(Inventory(nodes))
    loaded = await repo.load_inventory()
    assert loaded.nodes() == nodes
    cpe = loaded["CPE-1"]
    assert cpe.monthly_fee == Decimal("123.456") and str(cpe.monthly_fee).rstrip("0") == "123.456"
    assert cpe.decommissioned is not None and cpe.decommissioned.tzinfo is UTC
    assert cpe.decommissioned == datetime(2026, 10, 20, 4, 30, 0, 250000, tzinfo=UTC)


async def test_failed_inventory_write_leaves_nothing_half_written(repo: Repository) -> None:
    small = [
        Node(id="T01", kind=NodeKind.AREA),
        Node(id="CPE-1", kind=NodeKind.CPE, parent="T01"),
        Node(id="CAM-1", kind=NodeKind.CAMERA, parent="CPE-1", channels=1),
        Node(id="CAM-2", kind=NodeKind.CAMERA, parent="CPE-1", channels=1),
    ]
    await repo.save_inventory(Inventory(small))
    bad = Node(id="CAM-3", kind=NodeKind.CAMERA, parent="CPE-1", channels=1)
    object.__setattr__(bad, "channels", -1)  # the schema's CHECK refuses it, after the delete and update
    new = Inventory([small[0], dataclasses.replace(small[1], name="changed"), small[2], bad])
    with pytest.raises(StorageError, match="refused to save the inventory"):
        await repo.save_inventory(new)
    assert (await repo.load_inventory()).nodes() == small


# --------------------------------------------------------------------------------------- contracts


async def test_contracts(repo: Repository) -> None:
    assert await repo.load_contracts() == []
    contracts: list[dict[str, Any]] = [
        {
            "id": "county-2026",
            "name": "视频专网",
            "customer": "County",
            "timezone": "Asia/Shanghai",
            "base": "61875",
            "scopes": ["T01", "T02"],
            "policy": {"name": "default", "target": "0.98", "window_s": 300},
        },
        {"id": "small"},
    ]
    await repo.save_contracts(contracts)
    loaded = await repo.load_contracts()
    assert loaded[0] == contracts[0]
    assert loaded[1] == {
        "id": "small",
        "name": "",
        "customer": "",
        "timezone": "Asia/Shanghai",
        "base": None,
        "scopes": [],
        "policy": {},
    }
    await repo.save_contracts([{"id": "small", "base": Decimal("5156.25")}])
    assert [(c["id"], c["base"]) for c in await repo.load_contracts()] == [("small", "5156.25")]
    with pytest.raises(ValueError, match="keys the store does not keep"):
        await repo.save_contracts([{"id": "x", "unknown": 1}])


# --------------------------------------------------------------------------------------- incidents


def incident(scope: str, start: datetime, members: tuple[int, ...], **kw: object) -> IncidentView:
    values: dict[str, object] = {
        "id": f"{scope}@{start.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "scope": scope,
        "start": start,
        "end": None,
        "level": 0,
        "peak": len(members),
        "members": members,
        "intervals": {m: ((start, None),) for m in members},
        "ack": None,
        "ack_by": None,
        "onsite": None,
        "onsite_by": None,
        "explanations": (),
        "exclusion": (),
        "timeline": (TimelineEntry(start, start, TimelineKind.OPENED, f"opened at {scope}"),),
        "circuits": (scope,),
    }
    values.update(kw)
    return IncidentView(**values)  # type: ignore[arg-type]


def label(position: int) -> tuple[str, str]:
    return (f"CAM-{position:04d}", f"CAM-{position:04d}")


async def test_replace_incidents(repo: Repository) -> None:
    first = incident("CPE-0001", at(0), (5, 3, 4), level=3, peak=6)
    await repo.replace_incidents("A", [first], label)
    await repo.replace_incidents("B", [incident("CPE-0009", at(0), (9,))], label)
    ended = incident(
        "T01",
        at(0),
        (3, 4, 5, 6),
        end=at(90),
        level=3,
        ack=at(10).astimezone(CST),
        ack_by="crew",
        onsite=at(40),
        onsite_by="crew",
        exclusion=(ExclusionStep(at(50), ExclusionStatus.REQUESTED, "power", None, "op"),),
        timeline=(
            TimelineEntry(at(0), at(3), TimelineKind.OPENED, "opened"),
            TimelineEntry(at(10), at(10), TimelineKind.ACK, "crew"),
            TimelineEntry(at(90), at(91), TimelineKind.ENDED, "ended"),
        ),
    )
    later = incident("CPE-0002", at(200), (1,))
    await repo.replace_incidents("A", [later, ended], label)
    loaded = await repo.load_incidents("A")
    assert [i["id"] for i in loaded] == [ended.id, later.id]
    got = loaded[0]
    assert got["scope"] == "T01" and got["level"] == 3 and got["peak"] == 4
    assert got["end"] == at(90) and got["open"] is False and loaded[1]["open"] is True
    assert got["ack"] == at(10) and got["ack"].tzinfo is UTC and got["ack_by"] == "crew"
    assert got["onsite"] == at(40) and got["excluded"] == "requested"
    assert [m["position"] for m in got["members"]] == [3, 4, 5, 6]
    assert got["members"][0] == {"position": 3, "channel": "CAM-0003", "node": "CAM-0003"}
    assert [(t["kind"], t["known"]) for t in got["timeline"]] == [
        ("opened", at(3)),
        ("ack", at(10)),
        ("ended", at(91)),
    ]
    assert [i["id"] for i in await repo.load_incidents("B")] == ["CPE-0009@2026-10-03T00:00:00Z"]
    await repo.replace_incidents("A", [], label)
    assert await repo.load_incidents("A") == []
    assert len(await repo.load_incidents("B")) == 1


async def test_failed_incident_replace_keeps_the_old_ones(repo: Repository) -> None:
    await repo.replace_incidents("A", [incident("CPE-0001", at(0), (1,))], label)
    duplicate = incident("CPE-0002", at(5), (2,))
    with pytest.raises(StorageError):
        await repo.replace_incidents("A", [duplicate, duplicate], label)  # same key twice
    assert [i["id"] for i in await repo.load_incidents("A")] == ["CPE-0001@2026-10-03T00:00:00Z"]


# ----------------------------------------------------------------------------------------- reports


async def test_report_versions_increment_per_month(repo: Repository) -> None:
    assert await repo.load_report("A", "2026-10") is None
    body = {"month": "2026-10", "score": 97.5, "items": [{"key": "online", "lost": 1}]}
    v1 = await repo.save_report("A", "2026-10", at(0), at(1), "h1", body)
    v2 = await repo.save_report("A", "2026-10", at(60), at(61), "h1", {**body, "score": 96})
    other_month = await repo.save_report("A", "2026-11", at(0), at(1), "h1", body)
    other_contract = await repo.save_report("B", "2026-10", at(0), at(1), "h2", body)
    assert (v1, v2, other_month, other_contract) == (1, 2, 1, 1)
    latest = await repo.load_report("A", "2026-10")
    assert latest is not None and latest.version == 2 and latest.body["score"] == 96
    assert latest.as_of == at(60) and latest.as_of.tzinfo is UTC
    first = await repo.load_report("A", "2026-10", version=1)
    assert first is not None and first.body == body and first.policy_hash == "h1"
    assert await repo.load_report("A", "2026-10", version=3) is None
    assert await repo.report_versions("A", "2026-10") == [1, 2]
    with pytest.raises(ValueError, match="YYYY-MM"):
        await repo.save_report("A", "2026-13", at(0), at(1), "h1", body)


async def test_concurrent_report_saves_get_distinct_versions(repo: Repository) -> None:
    versions = await asyncio.gather(
        *(repo.save_report("A", "2026-10", at(i), at(i), "h", {"i": i}) for i in range(6))
    )
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]


# ------------------------------------------------------------------------------------------ tokens


async def test_tokens(db: Database, repo: Repository) -> None:
    secret = await repo.create_token("crew-phone", "crew")
    assert len(secret) >= 40
    assert await repo.role_for_token(secret) == ("crew-phone", "crew")
    assert await repo.role_for_token(secret + "x") is None
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM tokens"))).all()
    assert rows and not any(secret in str(value) for row in rows for value in row)
    with pytest.raises(StorageError, match="already exists"):
        await repo.create_token("crew-phone", "admin")
    assert await repo.revoke_token("crew-phone") is True
    assert await repo.role_for_token(secret) is None
    assert await repo.revoke_token("crew-phone") is False
    again = await repo.create_token("crew-phone", "crew")  # the name is free again
    assert await repo.role_for_token(again) == ("crew-phone", "crew")
    listed = await repo.list_tokens()
    assert [(t.name, t.revoked_at is None) for t in listed] == [("crew-phone", False), ("crew-phone", True)]


# --------------------------------------------------------------------------------------- audit log


async def test_audit_log_is_append_only(db: Database, repo: Repository) -> None:
    s1 = await repo.append_audit("op", "exclusion.request", "INC-1", {"cause": "power"}, at=at(0))
    s2 = await repo.append_audit("customer", "exclusion.approve", "INC-1")
    s3 = await repo.append_audit("op", "token.create", "crew-phone", {"role": "crew"})
    assert s1 < s2 < s3
    entries = await repo.load_audit("INC-1")
    assert [(e.actor, e.action, e.detail) for e in entries] == [
        ("op", "exclusion.request", {"cause": "power"}),
        ("customer", "exclusion.approve", None),
    ]
    assert entries[0].at == at(0) and entries[1].at.tzinfo is UTC
    assert len(await repo.load_audit()) == 3
    assert not any(hasattr(repo, name) for name in ("update_audit", "delete_audit"))
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(statement))
    assert len(await repo.load_audit()) == 3


# ---------------------------------------------------------------------------------------- evidence


async def test_evidence_dedupes_by_content(repo: Repository) -> None:
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 40
    first = await repo.save_evidence(photo, "pole.jpg", "image/jpeg", "op", uploaded_at=at(0))
    second = await repo.save_evidence(photo, "again.jpg", "image/jpeg", "someone")
    assert first == second and len(first) == 64
    stored = await repo.load_evidence(first)
    assert stored is not None
    assert (stored.filename, stored.uploaded_by, stored.size) == ("pole.jpg", "op", len(photo))
    assert stored.content == photo and stored.uploaded_at == at(0)
    other = await repo.save_evidence(b"note", "note.txt", "text/plain", "op")
    assert other != first
    assert await repo.load_evidence("0" * 64) is None


# ------------------------------------------------------------------------------------------- times


async def test_times_come_back_aware_utc(db: Database, repo: Repository) -> None:
    local = datetime(2026, 10, 3, 8, 0, tzinfo=CST)
    await repo.append_audit("op", "test", "t", at=local)
    (entry,) = await repo.load_audit("t")
    assert entry.at == local and entry.at.tzinfo is UTC and entry.at.hour == 0
    if db.dialect == "sqlite":
        async with db.engine.connect() as conn:
            raw = (await conn.execute(text("SELECT at FROM audit_log WHERE subject = 't'"))).scalar_one()
        assert raw.startswith("2026-10-03 00:00:00")  # stored as UTC
    with pytest.raises(StorageError, match="naive"):
        await repo.save_poll_runs({"X": PollRun(True, 1, datetime(2026, 1, 1), datetime(2026, 1, 1))})
    with pytest.raises(ValueError, match="no time zone"):
        await repo.load_events(until_known=datetime(2026, 1, 1))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL gives its times as datetimes
async def test_sqlite_text_times_of_every_shape_come_back_aware_utc(db: Database, repo: Repository) -> None:
    """SQLite's times are parsed in one step (UTCDateTime.result_processor): the text this type stores, and
    text written otherwise (no fraction, a T, an offset), as the generic parsing would."""
    assert db.dialect == "sqlite"
    shapes = {
        "2026-10-03 00:00:00.250000": datetime(2026, 10, 3, 0, 0, 0, 250000, tzinfo=UTC),
        "2026-10-03 00:00:00": datetime(2026, 10, 3, tzinfo=UTC),
        "2026-10-03T00:00:00.5": datetime(2026, 10, 3, 0, 0, 0, 500000, tzinfo=UTC),
        "2026-10-03 08:00:00+08:00": datetime(2026, 10, 3, tzinfo=UTC),
    }
    for n, stored in enumerate(shapes):
        await repo.create_token(f"shape-{n}", "viewer")
        async with db.engine.begin() as conn:
            await conn.execute(
                text("UPDATE tokens SET created_at = :at WHERE name = :n"), {"at": stored, "n": f"shape-{n}"}
            )
    listed = {t.name: t.created_at for t in await repo.list_tokens()}
    for n, expected in enumerate(shapes.values()):
        assert listed[f"shape-{n}"] == expected and listed[f"shape-{n}"].tzinfo is UTC
