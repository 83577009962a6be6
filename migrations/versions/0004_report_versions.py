"""Issued report versions (SPEC R9): the JSON text as issued, who issued it, the event-log position it saw, the
reason for a version of a closed month, and the assessor's signature (at most one signed, unsuperseded
version per contract and month: the partial unique index ``ix_reports_signed``).

Existing rows keep their body; their new columns are null (``content`` null: served as the JSON of ``body``).
Written by hand from ``ReportRow`` in ``monitor/storage/tables.py`` (the test suite checks that the two agree).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
SIGNED = "signed_at IS NOT NULL AND superseded_by IS NULL"
COLUMNS = ("content", "issued_by", "last_event_seq", "reason", "signed_at", "signed_by", "superseded_by")


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("content", sa.Text(), nullable=True))
        batch.add_column(sa.Column("issued_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_event_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("signed_at", TIME, nullable=True))
        batch.add_column(sa.Column("signed_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
    op.create_index(
        "ix_reports_signed",
        "reports",
        ["contract_id", "month"],
        unique=True,
        postgresql_where=sa.text(SIGNED),
        sqlite_where=sa.text(SIGNED),
    )


def downgrade() -> None:
    op.drop_index("ix_reports_signed", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
