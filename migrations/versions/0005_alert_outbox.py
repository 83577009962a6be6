"""Alerts to on-call crews: the durable outbox (``alert_outbox``) and what the planner last planned for each
incident (``alert_states``). Written by hand from ``AlertOutboxRow`` and ``AlertStateRow`` in
``monitor/storage/tables.py`` (the test suite checks that the two agree).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(96), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("engaged", sa.JSON(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("next_repeat", TIME, nullable=True),
        sa.Column("next_due", TIME, nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("contract_id", "incident_id", name="pk_alert_states"),
    )
    op.create_index("ix_alert_states_next_due", "alert_states", ["next_due"])
    op.create_table(
        "alert_outbox",
        sa.Column("seq", SEQ, sa.Identity(), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("due", TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", TIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_alert_outbox"),
        sa.UniqueConstraint("id", name="uq_alert_outbox_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'parked')", name=op.f("ck_alert_outbox_status_valid")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_alert_outbox_attempts_not_negative")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_outbox_status_target_seq", "alert_outbox", ["status", "target", "seq"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_status_target_seq", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_alert_states_next_due", table_name="alert_states")
    op.drop_table("alert_states")
