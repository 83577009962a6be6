"""Issued report versions in the store (migration 0004, SPEC R9) on SQLite and PostgreSQL: the JSON text kept as
issued, one signed version per month (the database refuses a second), signatures that move only to a version
issued after with a reason, the audit log, legacy versions from before 0004, and the events a report did not see.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, update

from monitor.errors import StorageError
from monitor.events import NodeState, StateEvent
from monitor.storage import Database, Repository
from monitor.storage.database import _alembic_config
from monitor.storage.repository import ReportStateError, report_text
from monitor.storage.tables import ReportRow

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
BODY: dict[str, Any] = {"month": "2026-10", "version": None, "score": 97.5, "note": "城关镇 \u2028", "rate": 0.1 + 0.2}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def issue(repo: Repository, minutes: float = 0, reason: str | None = None, **body: Any) -> int:
    stored = await repo.issue_report(
        "A",
        "2026-10",
        as_of=at(minutes),
        issued_at=at(minutes),
        policy_hash="h1",
        body={**BODY, **body},
        issued_by="assessor-1",
        last_event_seq=0,
        reason=reason,
    )
    return stored.version


def _migrate(conn: Connection, revision: str, down: bool) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(cfg, revision)


async def test_issued_text_is_kept_and_returned_as_issued(repo: Repository) -> None:
    stored = await repo.issue_report(
        "A",
        "2026-10",
        as_of=at(0),
        issued_at=at(1),
        policy_hash="h1",
        body=BODY,
        issued_by="assessor-1",
        last_event_seq=41,
    )
    assert stored.version == 1 and stored.body == {**BODY, "version": 1}
    assert stored.content == report_text({**BODY, "version": 1})
    loaded = await repo.load_report("A", "2026-10", 1)
    assert loaded is not None and loaded.content == stored.content and loaded.body == stored.body
    assert (loaded.issued_by, loaded.last_event_seq, loaded.reason, loaded.signed) == ("assessor-1", 41, None, False)
    assert list(stored.body) == list(BODY)  # the report's key order is kept, not sorted
    with pytest.raises(ValueError, match="YYYY-MM"):
        await repo.issue_report(
            "A", "2026-1", as_of=at(0), issued_at=at(0), policy_hash="h", body=BODY, issued_by="x", last_event_seq=0
        )
    with pytest.raises(ValueError, match="issuer"):
        await repo.issue_report(
            "A", "2026-10", as_of=at(0), issued_at=at(0), policy_hash="h", body=BODY, issued_by="", last_event_seq=0
        )


async def test_concurrent_issues_get_distinct_versions(repo: Repository) -> None:
    versions = await asyncio.gather(*(issue(repo, i, score=i) for i in range(6)))
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    for v in versions:
        loaded = await repo.load_report("A", "2026-10", v)
        assert loaded is not None and loaded.body["version"] == v


async def test_signing_rules_and_the_audit_log(repo: Repository) -> None:
    assert await repo.signed_report("A", "2026-10") is None
    assert await issue(repo, 0) == 1
    assert await issue(repo, 1) == 2
    with pytest.raises(ReportStateError) as info:
        await repo.sign_report("A", "2026-10", 3, signed_by="wang", signed_at=at(5))
    assert (info.value.status, info.value.field) == (404, "version")
    signed = await repo.sign_report("A", "2026-10", 1, signed_by="wang", signed_at=at(5))
    assert signed.signed and signed.signed_by == "wang" and signed.signed_at == at(5)
    current = await repo.signed_report("A", "2026-10")
    assert current is not None and current.version == 1
    # Closed: version 2 was issued without a reason, and a new one needs one.
    with pytest.raises(ReportStateError) as info:
        await repo.sign_report("A", "2026-10", 2, signed_by="wang", signed_at=at(6))
    assert (info.value.status, info.value.field) == (409, "reason")
    with pytest.raises(ReportStateError) as info:
        await issue(repo, 7)
    assert (info.value.status, info.value.field) == (409, "reason")
    assert await repo.report_versions("A", "2026-10") == [1, 2]
    assert await issue(repo, 8, reason="late outage") == 3
    moved = await repo.sign_report("A", "2026-10", 3, signed_by="li", signed_at=at(9))
    assert moved.signed and moved.reason == "late outage"
    infos = {v.version: v for v in await repo.list_reports("A", "2026-10")}
    assert (infos[1].signed, infos[1].signed_by, infos[1].superseded_by) == (False, "wang", 3)
    assert (infos[2].signed, infos[3].signed) == (False, True)
    with pytest.raises(ReportStateError) as info:
        await repo.sign_report("A", "2026-10", 1, signed_by="wang", signed_at=at(10))
    assert (info.value.status, info.value.field) == (409, "version")
    # Other contracts and months are apart.
    assert await repo.signed_report("B", "2026-10") is None and await repo.signed_report("A", "2026-11") is None
    entries = [(e.actor, e.action, e.subject) for e in await repo.load_audit()]
    assert entries == [
        ("assessor-1", "report issue", "report A/2026-10 v1"),
        ("assessor-1", "report issue", "report A/2026-10 v2"),
        ("wang", "report sign", "report A/2026-10 v1"),
        ("assessor-1", "report issue", "report A/2026-10 v3"),
        ("li", "report sign", "report A/2026-10 v3"),
    ]


async def test_concurrent_signatures_leave_one_signed(repo: Repository) -> None:
    assert await issue(repo, 0) == 1 and await issue(repo, 1) == 2
    results = await asyncio.gather(
        *(repo.sign_report("A", "2026-10", v, signed_by="wang", signed_at=at(5)) for v in (1, 2)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, ReportStateError)]
    assert len(refused) == 1 and refused[0].status == 409
    assert sum(v.signed for v in await repo.list_reports("A", "2026-10")) == 1


async def test_the_database_refuses_two_signed_versions(db: Database, repo: Repository) -> None:
    assert await issue(repo, 0) == 1 and await issue(repo, 1) == 2
    await repo.sign_report("A", "2026-10", 1, signed_by="wang", signed_at=at(5))
    with pytest.raises(StorageError):
        async with repo._write("sign behind the repository's back") as conn:
            await conn.execute(update(ReportRow).where(ReportRow.version == 2).values(signed_at=at(6), signed_by="x"))
    assert [v.signed for v in await repo.list_reports("A", "2026-10")] == [True, False]


async def test_versions_from_before_0004_survive_the_upgrade(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.run_sync(_migrate, "0003", True)
        await conn.commit()
    repo = db.repository()
    assert await repo.save_report("A", "2026-10", at(0), at(1), "h0", {"score": 90, "month": "2026-10"}) == 1
    async with db.engine.connect() as conn:
        await conn.run_sync(_migrate, "head", False)
        await conn.commit()
        indexes = await conn.run_sync(lambda c: {ix["name"] for ix in inspect(c).get_indexes("reports")})
    assert "ix_reports_signed" in indexes
    legacy = await repo.load_report("A", "2026-10", 1)
    assert legacy is not None and legacy.body == {"score": 90, "month": "2026-10"}
    assert legacy.content == report_text(legacy.body) and legacy.issued_by is None and legacy.last_event_seq is None
    assert await issue(repo, 2) == 2
    assert [v.issued_by for v in await repo.list_reports("A", "2026-10")] == [None, "assessor-1"]


async def test_events_since_a_version(repo: Repository) -> None:
    def down(node: str, minutes: float, known: float) -> StateEvent:
        return StateEvent(at=at(minutes), known_at=at(known), node=node, state=NodeState.DOWN)

    await repo.append_events([down("N1", 0, 0), down("N2", 1, 30)], "first")
    log = await repo.load_event_log(until_known=at(10))
    assert log.position == 2 and [getattr(e, "node", None) for e in log.events()] == ["N1"]
    await repo.append_events([down("N3", 2, 5), down("N4", 24 * 60 * 40, 24 * 60 * 40)], "second")
    # A version as of +10 min that saw the log up to 2: N2 (known later) and N3 (stored later) are new to it, and
    # so is N4, dated outside the range asked for.
    delta = await repo.events_since(
        position=log.position, as_of=at(10), until_known=at(24 * 60 * 50), dated_from=at(0), dated_to=at(24 * 60)
    )
    assert (delta.count, delta.elsewhere) == (2, 1)
    assert [(e.node, e.source, e.seq) for e in delta.events] == [("N2", "first", 2), ("N3", "second", 3)]
    assert all(e.recorded_at.tzinfo is not None for e in delta.events)
    # What the recomputation does not see yet is not a change.
    delta = await repo.events_since(
        position=log.position, as_of=at(10), until_known=at(20), dated_from=at(0), dated_to=at(24 * 60)
    )
    assert (delta.count, [e.node for e in delta.events]) == (1, ["N3"])
