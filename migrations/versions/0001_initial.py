"""Initial schema.

Events, confirmation runs, inventory, contracts, incidents, reports, tokens, audit log and evidence files.

Written by hand from ``monitor/storage/tables.py`` (the test suite checks that the two agree). It uses plain
SQLAlchemy types, not the application's type decorators, so that it keeps working when those change:
times are ``TIMESTAMP WITH TIME ZONE`` (naive UTC text on SQLite), money is ``NUMERIC`` on PostgreSQL and
text on SQLite, JSON is ``JSON``.

``audit_log`` is append-only: triggers refuse UPDATE and DELETE on it.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.String(40).with_variant(sa.Numeric(), "postgresql")


def _seq(name: str) -> sa.Column[int]:
    return sa.Column(name, SEQ, sa.Identity(), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "events",
        _seq("seq"),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("known", TIME, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("node", sa.String(64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("recorded_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_known_seq", "events", ["known", "seq"])
    op.create_index("ix_events_node", "events", ["node"])

    op.create_table(
        "poll_runs",
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("since", TIME, nullable=False),
        sa.Column("last_poll", TIME, nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_poll_runs"),
        sa.CheckConstraint("count >= 0", name=op.f("ck_poll_runs_count_not_negative")),
    )

    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.String(45), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("bandwidth_mbps", sa.Integer(), nullable=True),
        sa.Column("monthly_fee", MONEY, nullable=True),
        sa.Column("in_county", sa.Boolean(), nullable=True),
        sa.Column("commissioned", TIME, nullable=True),
        sa.Column("decommissioned", TIME, nullable=True),
        sa.Column("snmp", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_nodes"),
        sa.CheckConstraint("channels >= 0", name=op.f("ck_nodes_channels_not_negative")),
    )
    op.create_index("ix_nodes_position", "nodes", ["position"])

    op.create_table(
        "contracts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("customer", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("base", sa.Text(), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contracts"),
    )

    op.create_table(
        "incidents",
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(96), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("start", TIME, nullable=False),
        sa.Column("end", TIME, nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.Column("ack", TIME, nullable=True),
        sa.Column("ack_by", sa.Text(), nullable=True),
        sa.Column("onsite", TIME, nullable=True),
        sa.Column("onsite_by", sa.Text(), nullable=True),
        sa.Column("excluded", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("contract_id", "id", name="pk_incidents"),
        sa.CheckConstraint("level >= 0 AND level <= 3", name=op.f("ck_incidents_level_range")),
    )
    op.create_index("ix_incidents_contract_id_start", "incidents", ["contract_id", "start"])

    op.create_table(
        "incident_members",
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(96), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(80), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("contract_id", "incident_id", "position", name="pk_incident_members"),
        sa.ForeignKeyConstraint(
            ["contract_id", "incident_id"],
            ["incidents.contract_id", "incidents.id"],
            name="fk_incident_members_incident",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "incident_timeline",
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(96), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("known", TIME, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("contract_id", "incident_id", "seq", name="pk_incident_timeline"),
        sa.ForeignKeyConstraint(
            ["contract_id", "incident_id"],
            ["incidents.contract_id", "incidents.id"],
            name="fk_incident_timeline_incident",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "reports",
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("as_of", TIME, nullable=False),
        sa.Column("generated_at", TIME, nullable=False),
        sa.Column("policy_hash", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("contract_id", "month", "version", name="pk_reports"),
        sa.CheckConstraint("version >= 1", name=op.f("ck_reports_version_positive")),
    )

    op.create_table(
        "tokens",
        _seq("id"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("hash", name="uq_tokens_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_tokens_active_name",
        "tokens",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )

    op.create_table(
        "audit_log",
        _seq("seq"),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    _audit_append_only()

    op.create_table(
        "evidence",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", TIME, nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evidence"),
        sa.CheckConstraint("size >= 0", name=op.f("ck_evidence_size_not_negative")),
    )


def _audit_append_only() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION slawatch_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION slawatch_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION slawatch_audit_log_append_only()"
        )


def downgrade() -> None:
    op.drop_table("evidence")
    op.drop_table("audit_log")  # drops its triggers
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS slawatch_audit_log_append_only()")
    op.drop_index("ix_tokens_active_name", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("reports")
    op.drop_table("incident_timeline")
    op.drop_table("incident_members")
    op.drop_table("incidents")
    op.drop_table("contracts")
    op.drop_table("nodes")
    op.drop_table("poll_runs")
    op.drop_table("events")
