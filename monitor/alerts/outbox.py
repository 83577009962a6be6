"""The durable alert outbox and the planner's per-incident state, over a connected database.

* :func:`write_plans`: the new states and the planned messages, in one transaction (a message planned twice,
  same ``id``, is one row); :func:`write_plans_on` writes them in the caller's transaction (the service's
  projection write: an incident change and the alerts it causes are stored together or not at all).
* :func:`load_states` (:func:`load_states_on`: in the caller's transaction) / :func:`due_states`: the states
  of some incidents, or those with a timer due.
* :func:`deliverable`: the pending messages that may be sent now, in ``seq`` order per (target, incident): a
  group is held back while its first message waits for a retry, and a message not yet due (quiet hours) goes
  as soon as a later one of its group is due (a level-1 rise carries the deferred ones before it along).
* :func:`mark_sent` / :func:`mark_failed` (retry with exponential backoff; parked after ``max_attempts``);
  :func:`requeue` puts parked messages back.
* :func:`outbox_counts` (messages by target and status), :func:`outbox_probe` (the metrics' ``OutboxProbe``:
  depth and parked count, wired by the API as ``app.state.alert_outbox``) and :func:`outbox_status` (what
  ``slawatch alerts status`` shows).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.alerts.rules import AlertState, IncidentFacts, PlannedAlert
from monitor.storage.database import WRITE_OPTION, Database, translate_errors
from monitor.storage.tables import AlertOutboxRow, AlertStateRow

if TYPE_CHECKING:
    from monitor.metrics import OutboxStats

__all__ = [
    "OutboxMessage",
    "OutboxStatus",
    "deliverable",
    "due_states",
    "load_states",
    "load_states_on",
    "mark_failed",
    "mark_sent",
    "messages",
    "open_states",
    "outbox_counts",
    "outbox_probe",
    "outbox_status",
    "requeue",
    "write_plans",
    "write_plans_on",
]

_states = cast(Table, AlertStateRow.__table__)
_outbox = cast(Table, AlertOutboxRow.__table__)
_CHUNK = 400

PENDING, SENT, PARKED = "pending", "sent", "parked"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    seq: int
    id: str
    alert_id: str
    contract_id: str
    incident_id: str
    kind: str
    target: str
    payload: dict[str, Any]
    due: datetime
    attempts: int
    next_attempt: datetime
    status: str = PENDING
    last_error: str | None = None


def _insert(conn: AsyncConnection, table: Table) -> Any:
    return pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)


def _state_row(state: AlertState, now: datetime) -> dict[str, Any]:
    return {
        "contract_id": state.contract_id,
        "incident_id": state.incident_id,
        "facts": state.facts.to_json(),
        "engaged": list(state.engaged),
        "repeats": state.repeats,
        "next_repeat": state.next_repeat,
        "next_due": state.next_due,
        "ended": state.ended,
        "updated_at": now,
    }


def _state(row: Any) -> AlertState:
    return AlertState(
        IncidentFacts.from_json(row.facts), tuple(row.engaged), row.repeats, row.next_repeat, row.next_due
    )


async def write_plans(
    db: Database, states: Sequence[AlertState], alerts: Sequence[PlannedAlert], now: datetime
) -> None:
    """Store new states and planned messages together: both or neither."""
    if not states and not alerts:
        return
    with translate_errors("write the alert outbox", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await write_plans_on(conn, states, alerts, now)


async def write_plans_on(
    conn: AsyncConnection, states: Sequence[AlertState], alerts: Sequence[PlannedAlert], now: datetime
) -> None:
    """:func:`write_plans` inside the caller's transaction (the projection write that caused them)."""
    if states:
        ins = _insert(conn, _states)
        stmt = ins.on_conflict_do_update(
            index_elements=["contract_id", "incident_id"],
            set_={c: getattr(ins.excluded, c) for c in (
                "facts", "engaged", "repeats", "next_repeat", "next_due", "ended", "updated_at"
            )},
        )
        await conn.execute(stmt, [_state_row(s, now) for s in states])
    if alerts:
        rows = [
            {
                "id": a.id,
                "alert_id": a.alert_id,
                "contract_id": a.contract_id,
                "incident_id": a.incident_id,
                "kind": a.kind.value,
                "target": a.target,
                "payload": dict(a.payload),
                "created_at": now,
                "due": a.due,
                "status": PENDING,
                "attempts": 0,
                "next_attempt": a.due,
                "last_error": None,
                "sent_at": None,
            }
            for a in alerts
        ]
        await conn.execute(_insert(conn, _outbox).on_conflict_do_nothing(index_elements=["id"]), rows)


async def load_states(db: Database, contract_id: str, incident_ids: Iterable[str]) -> dict[str, AlertState]:
    """The stored states of some incidents of a contract, by incident id."""
    with translate_errors("read the alert states", db.url):
        async with db.engine.connect() as conn, conn.begin():
            return await load_states_on(conn, contract_id, incident_ids)


async def load_states_on(
    conn: AsyncConnection, contract_id: str, incident_ids: Iterable[str]
) -> dict[str, AlertState]:
    """:func:`load_states` inside the caller's transaction."""
    ids = list(dict.fromkeys(incident_ids))
    out: dict[str, AlertState] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        rows = await conn.execute(
            select(_states).where(_states.c.contract_id == contract_id, _states.c.incident_id.in_(chunk))
        )
        for row in rows:
            out[row.incident_id] = _state(row)
    return out


async def due_states(db: Database, now: datetime) -> list[AlertState]:
    """States whose next timer is due by ``now``."""
    with translate_errors("read the alert states", db.url):
        async with db.engine.connect() as conn, conn.begin():
            rows = await conn.execute(
                select(_states).where(_states.c.next_due <= now).order_by(_states.c.next_due)
            )
            return [_state(r) for r in rows]


async def open_states(db: Database) -> list[AlertState]:
    """The states of every alerted incident not yet ended (what Alertmanager is kept told of)."""
    with translate_errors("read the alert states", db.url):
        async with db.engine.connect() as conn, conn.begin():
            rows = await conn.execute(
                select(_states).where(~_states.c.ended).order_by(_states.c.contract_id, _states.c.incident_id)
            )
            return [_state(r) for r in rows]


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        row.seq, row.id, row.alert_id, row.contract_id, row.incident_id, row.kind, row.target, row.payload,
        row.due, row.attempts, row.next_attempt, row.status, row.last_error,
    )


async def deliverable(db: Database, now: datetime, per_target: int = 500) -> list[list[OutboxMessage]]:
    """Groups of pending messages (one per target and incident, each in ``seq`` order) that may go now. Each
    target's oldest ``per_target`` pending messages are looked at, so a dead target's backlog never hides the
    others' messages."""
    messages: list[OutboxMessage] = []
    with translate_errors("read the alert outbox", db.url):
        async with db.engine.connect() as conn, conn.begin():
            targets = await conn.scalars(select(_outbox.c.target).where(_outbox.c.status == PENDING).distinct())
            for target in list(targets):
                rows = await conn.execute(
                    select(_outbox)
                    .where(_outbox.c.status == PENDING, _outbox.c.target == target)
                    .order_by(_outbox.c.seq)
                    .limit(per_target)
                )
                messages.extend(_message(r) for r in rows)
    groups: dict[tuple[str, str, str], list[OutboxMessage]] = {}
    for m in messages:
        groups.setdefault((m.target, m.contract_id, m.incident_id), []).append(m)
    out = []
    for group in groups.values():
        if group[0].next_attempt > now and group[0].attempts > 0:
            continue  # waiting for its retry: nothing after it may overtake it
        last_due = max((i for i, m in enumerate(group) if m.due <= now), default=-1)
        if last_due >= 0:
            out.append(group[: last_due + 1])
    return out


async def mark_sent(db: Database, seq: int, now: datetime) -> None:
    await _update(db, seq, "mark an alert sent", status=SENT, sent_at=now, last_error=None)


async def mark_failed(
    db: Database,
    message: OutboxMessage,
    error: str,
    now: datetime,
    *,
    max_attempts: int,
    backoff_s: float,
    backoff_max_s: float,
) -> bool:
    """Count a failed attempt; retry after ``backoff_s * 2**(attempts-1)`` (at most ``backoff_max_s``), or park
    the message after ``max_attempts``. True when it was parked."""
    attempts = message.attempts + 1
    parked = attempts >= max_attempts
    delay = min(backoff_s * 2 ** (attempts - 1), backoff_max_s)
    await _update(
        db,
        message.seq,
        "record a failed alert delivery",
        attempts=attempts,
        last_error=error[:1000],
        next_attempt=now + timedelta(seconds=delay),
        status=PARKED if parked else PENDING,
    )
    return parked


async def _update(db: Database, seq: int, action: str, **values: Any) -> None:
    with translate_errors(action, db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.execute(update(_outbox).where(_outbox.c.seq == seq).values(**values))


async def requeue(db: Database, now: datetime, target: str | None = None) -> int:
    """Put parked messages (of one target, or all) back in the queue, with their attempts reset."""
    cond = _outbox.c.status == PARKED
    if target is not None:
        cond = and_(cond, _outbox.c.target == target)
    with translate_errors("requeue parked alerts", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                result = await conn.execute(
                    update(_outbox).where(cond).values(status=PENDING, attempts=0, next_attempt=now)
                )
                return int(result.rowcount or 0)


async def outbox_counts(db: Database) -> dict[tuple[str, str], int]:
    """Messages by (target, status): the metric ``slawatch_alert_outbox_messages{target, status}``. The outbox
    depth is the ``pending`` count, the parked count the ``parked`` one."""
    with translate_errors("count the alert outbox", db.url):
        async with db.engine.connect() as conn, conn.begin():
            rows = await conn.execute(
                select(_outbox.c.target, _outbox.c.status, func.count()).group_by(_outbox.c.target, _outbox.c.status)
            )
            return {(r[0], r[1]): int(r[2]) for r in rows}


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """Per target: counts by status, the oldest pending message's creation time; the parked messages."""

    counts: dict[tuple[str, str], int]
    oldest_pending: dict[str, datetime]
    parked: list[OutboxMessage]
    open_incidents: int


async def outbox_status(db: Database, parked_limit: int = 50) -> OutboxStatus:
    counts = await outbox_counts(db)
    with translate_errors("read the alert outbox", db.url):
        async with db.engine.connect() as conn, conn.begin():
            oldest = await conn.execute(
                select(_outbox.c.target, func.min(_outbox.c.created_at))
                .where(_outbox.c.status == PENDING)
                .group_by(_outbox.c.target)
            )
            parked = await conn.execute(
                select(_outbox).where(_outbox.c.status == PARKED).order_by(_outbox.c.seq.desc()).limit(parked_limit)
            )
            open_count = await conn.scalar(select(func.count()).select_from(_states).where(~_states.c.ended))
            oldest_map: dict[str, datetime] = {r[0]: r[1] for r in oldest if r[1] is not None}
            return OutboxStatus(counts, oldest_map, [_message(r) for r in parked], int(open_count or 0))


async def messages(db: Database, incident_id: str | None = None) -> list[OutboxMessage]:
    """Every stored message (of one incident), in ``seq`` order (for tests and the status command)."""
    stmt = select(_outbox).order_by(_outbox.c.seq)
    if incident_id is not None:
        stmt = stmt.where(_outbox.c.incident_id == incident_id)
    with translate_errors("read the alert outbox", db.url):
        async with db.engine.connect() as conn, conn.begin():
            return [_message(r) for r in await conn.execute(stmt)]



def outbox_probe(db: Database) -> Callable[[], Awaitable[OutboxStats]]:
    """The metrics' :data:`monitor.metrics.OutboxProbe` over this outbox: ``depth`` is every message not yet
    delivered (pending and parked), ``parked`` those given up on. One grouped count per call."""

    from monitor.metrics import OutboxStats

    async def probe() -> OutboxStats:
        counts = await outbox_counts(db)
        pending = sum(n for (_t, status), n in counts.items() if status == PENDING)
        parked = sum(n for (_t, status), n in counts.items() if status == PARKED)
        return OutboxStats(depth=pending + parked, parked=parked)

    return probe
