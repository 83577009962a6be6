"""The database schema as SQLAlchemy 2 declarative models.

Every time is stored timezone-aware and normalised to UTC (:class:`UTCDateTime`); on SQLite, which has no
time zone type, it is stored as naive UTC text and comes back with UTC attached. Money is exact
(:class:`ExactDecimal`: ``NUMERIC`` on PostgreSQL, text on SQLite). JSON columns hold plain JSON values.

The repository (:mod:`monitor.storage.repository`) works on these tables with Core statements; the Alembic
migrations in ``migrations/versions`` create them (``0001_initial`` was written by hand from these models;
keep the two in step).

Events (``events``) are the source of truth; ``incidents``, ``incident_members`` and ``incident_timeline`` are
a projection the engine rebuilds from them. ``audit_log`` is append-only (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "NAMING_CONVENTION",
    "AuditRow",
    "Base",
    "ContractRow",
    "EventRow",
    "EvidenceRow",
    "ExactDecimal",
    "IncidentMemberRow",
    "IncidentRow",
    "IncidentTimelineRow",
    "NodeRow",
    "PollRunRow",
    "ProjectionSnapshotRow",
    "ReportRow",
    "TokenRow",
    "UTCDateTime",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that only accepts aware datetimes and always returns aware UTC ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store the naive datetime {value.isoformat()} (no time zone)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # SQLite gives back the naive UTC text it stored; its DATETIME would parse it (datetime.fromisoformat)
        # and process_result_value attach UTC, two Python calls and a replace() per value: parsed with the
        # offset appended instead, in one step (a page of 100 incidents has 400 times: ~0.4 ms of ~4 ms).
        generic = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or generic is None:
            return generic

        def process(value: Any) -> datetime | None:
            if isinstance(value, str):
                try:
                    return datetime.fromisoformat(value + "+00:00")
                except ValueError:  # not the naive text this type stores: as the generic processing does
                    pass
            return generic(value)

        return process


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: ``NUMERIC`` on PostgreSQL; text on SQLite (whose NUMERIC is a float)."""

    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


# A monotonic surrogate key: BIGINT IDENTITY on PostgreSQL, INTEGER PRIMARY KEY AUTOINCREMENT on SQLite.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        Decimal: ExactDecimal(),
        dict[str, Any]: JSON(none_as_null=True),
    }


class EventRow(Base):
    """One ingested event. ``id`` (its deterministic hash) is unique: the same event twice is one row.

    ``seq`` is the ingestion order (the primary key, so that SQLite assigns it); ``node`` is the node the
    event names (a maintenance window's scope), ``NULL`` when it names an incident or no node.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_known_seq", "known", "seq"),
        Index("ix_events_node", "node"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(SeqType, Identity(), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    known: Mapped[datetime]
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(16))
    node: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime]


class PollRunRow(Base):
    """The confirmer's current run of like poll results of a node (:class:`monitor.confirmation.PollRun`)."""

    __tablename__ = "poll_runs"
    __table_args__ = (CheckConstraint("count >= 0", name="count_not_negative"),)

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime]
    last_poll: Mapped[datetime]


class NodeRow(Base):
    """One inventory node; ``position`` is its inventory order. ``snmp`` holds the settings, secrets included.

    ``parent`` is not a foreign key: the inventory is validated whole before it is saved.
    """

    __tablename__ = "nodes"
    __table_args__ = (
        CheckConstraint("channels >= 0", name="channels_not_negative"),
        Index("ix_nodes_position", "position"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(45))
    channels: Mapped[int] = mapped_column(Integer)
    bandwidth_mbps: Mapped[int | None] = mapped_column(Integer)
    monthly_fee: Mapped[Decimal | None]
    in_county: Mapped[bool | None] = mapped_column(Boolean)
    commissioned: Mapped[datetime | None]
    decommissioned: Mapped[datetime | None]
    snmp: Mapped[dict[str, Any] | None]


class ContractRow(Base):
    """A contract as plain values; ``position`` keeps the order contracts were saved in."""

    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    customer: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    base: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(JSON(none_as_null=True))
    policy: Mapped[dict[str, Any]]


class IncidentRow(Base):
    """A contract's incident as last projected from the events. ``excluded`` is the exclusion status text."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("level >= 0 AND level <= 3", name="level_range"),
        Index("ix_incidents_contract_id_start", "contract_id", "start"),
    )

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    level: Mapped[int] = mapped_column(Integer)
    peak: Mapped[int] = mapped_column(Integer)
    ack: Mapped[datetime | None]
    ack_by: Mapped[str | None] = mapped_column(Text)
    onsite: Mapped[datetime | None]
    onsite_by: Mapped[str | None] = mapped_column(Text)
    excluded: Mapped[str | None] = mapped_column(String(16))


class IncidentMemberRow(Base):
    """A channel an incident has held: ``position`` is the channel's inventory position, ``ordinal`` the order
    in which it joined, ``channel`` its label and ``node`` its node."""

    __tablename__ = "incident_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["contract_id", "incident_id"],
            ["incidents.contract_id", "incidents.id"],
            name="fk_incident_members_incident",
            ondelete="CASCADE",
        ),
    )

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(80))
    node: Mapped[str] = mapped_column(String(64))


class IncidentTimelineRow(Base):
    """One entry of an incident's timeline, ``seq`` in timeline order."""

    __tablename__ = "incident_timeline"
    __table_args__ = (
        ForeignKeyConstraint(
            ["contract_id", "incident_id"],
            ["incidents.contract_id", "incidents.id"],
            name="fk_incident_timeline_incident",
            ondelete="CASCADE",
        ),
    )

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    known: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)


class ReportRow(Base):
    """One issued version of a monthly report (SPEC R9); ``version`` counts from 1 per (contract, month).

    ``content`` is the report's JSON exactly as issued (returned byte for byte ever after; ``body`` is the same
    value for queries); ``issued_by`` who issued it and ``generated_at`` when; ``last_event_seq`` the position
    in the event log (``events.seq``) when it was computed: it saw the events with ``seq <= last_event_seq``
    and ``known <= as_of``. ``reason`` is required for a version of a closed month. ``signed_*`` record the
    assessor's signature; ``superseded_by`` the later version whose signature replaced it. At most one version
    per month is signed and not superseded (the paid one): the partial unique index ``ix_reports_signed``.
    Versions stored before migration 0004 have ``content``, ``issued_by`` and ``last_event_seq`` null.
    """

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        Index(
            "ix_reports_signed",
            "contract_id",
            "month",
            unique=True,
            postgresql_where=text("signed_at IS NOT NULL AND superseded_by IS NULL"),
            sqlite_where=text("signed_at IS NOT NULL AND superseded_by IS NULL"),
        ),
    )

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[datetime]
    generated_at: Mapped[datetime]
    policy_hash: Mapped[str] = mapped_column(Text)
    body: Mapped[dict[str, Any]]
    content: Mapped[str | None] = mapped_column(Text)
    issued_by: Mapped[str | None] = mapped_column(Text)
    last_event_seq: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[datetime | None]
    signed_by: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[int | None] = mapped_column(Integer)


class TokenRow(Base):
    """An API token: only the sha256 of its secret is kept. A name is unique among unrevoked tokens."""

    __tablename__ = "tokens"
    __table_args__ = (
        Index(
            "ix_tokens_active_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SeqType, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # null: never (migration 0006)


class AuditRow(Base):
    """One audit entry (who, when, what). Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(SeqType, Identity(), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]


class EvidenceRow(Base):
    """An uploaded evidence file, keyed by the sha256 of its content (the same file twice is one row)."""

    __tablename__ = "evidence"
    __table_args__ = (CheckConstraint("size >= 0", name="size_not_negative"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime]
    uploaded_by: Mapped[str] = mapped_column(Text)


class HeartbeatRow(Base):
    """The live collector's heartbeat (one row per collector ``name``): when it started, when it last
    completed a cycle (``at``: everything up to then was observed), and whether it is running (``False``
    after a clean stop). Written by :mod:`monitor.storage.heartbeats`; migration ``0002_heartbeats``."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime]
    at: Mapped[datetime]
    running: Mapped[bool] = mapped_column(Boolean)


class MaintenanceRequestRow(Base):
    """A maintenance window the operator asked for over the API, and the assessor's decision (SPEC §4).

    A workflow record, not a source of truth: consenting emits a ``maintenance`` event, which is what counts.
    ``id`` is ``MR-`` and 12 hex digits of a hash of the request and its requester (the same request twice is
    one row). ``status`` is ``requested``, ``consented`` or ``refused``; ``decided_*`` and ``note`` are set by
    the decision. Written by :mod:`monitor.storage.maintenance`; migration ``0003_maintenance_requests``.
    """

    __tablename__ = "maintenance_requests"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'consented', 'refused')", name="status_valid"),
        CheckConstraint('"end" > start', name="end_after_start"),
        Index("ix_maintenance_requests_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class AlertStateRow(Base):
    """What the alert planner last planned for an incident (:class:`monitor.alerts.rules.AlertState`): the
    incident's facts as JSON, the escalation roles engaged, the repeats sent, and ``next_due``, when its next
    timer (escalation step or repeat) comes due (null: none). Written by :mod:`monitor.alerts.outbox`;
    migration ``0005_alert_outbox``."""

    __tablename__ = "alert_states"
    __table_args__ = (Index("ix_alert_states_next_due", "next_due"),)

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    facts: Mapped[dict[str, Any]]
    engaged: Mapped[list[str]] = mapped_column(JSON(none_as_null=True))
    repeats: Mapped[int] = mapped_column(Integer)
    next_repeat: Mapped[datetime | None]
    next_due: Mapped[datetime | None]
    ended: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class AlertOutboxRow(Base):
    """One alert message to one target, durable until delivered (at least once, in ``seq`` order per target and
    incident). ``id`` is unique per message and target (a message planned twice is one row); ``alert_id`` is
    shared by the targets of one alert and sent along, so receivers drop duplicates. ``status`` is
    ``pending``, ``sent`` or ``parked`` (given up after too many failures); ``due`` is when it may first be
    sent (quiet hours), ``next_attempt`` when it may be tried again. Migration ``0005_alert_outbox``."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'parked')", name="status_valid"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_alert_outbox_status_target_seq", "status", "target", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(SeqType, Identity(), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    alert_id: Mapped[str] = mapped_column(Text)
    contract_id: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    due: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]


class ProjectionSnapshotRow(Base):
    """The incident projection's engines as they stood after applying the stored events up to ``position``
    (:mod:`monitor.snapshot`), so that a start replays only what was stored since instead of the whole history.

    One row at a time (a new snapshot replaces the others in its transaction). ``key`` is a digest of everything
    the engines were built from (snapshot format, engine code, inventory, contracts, confirmation settings): a
    start with another key ignores the row. ``last_event`` is the id of the event stored at ``position`` (a
    database restored under the row no longer has it there), ``events`` how many stored events were applied,
    ``known_until`` the latest known time among them, ``raw_bytes`` the size before compression. Written by
    :mod:`monitor.storage.snapshots`; migration ``0007_projection_snapshots``."""

    __tablename__ = "projection_snapshots"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    last_event: Mapped[str] = mapped_column(Text)
    events: Mapped[int] = mapped_column(BigInteger)
    known_until: Mapped[datetime | None]
    taken_at: Mapped[datetime]
    raw_bytes: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
