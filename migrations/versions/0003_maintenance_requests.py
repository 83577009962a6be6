"""Maintenance requests: windows the operator asks for over the API, and the assessor's consent or refusal
(SPEC §4). A consent emits a ``maintenance`` event; this table only keeps the workflow.

Written by hand from ``MaintenanceRequestRow`` in ``monitor/storage/tables.py`` (the test suite checks that the
two agree).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "maintenance_requests",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("start", TIME, nullable=False),
        sa.Column("end", TIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", TIME, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance_requests"),
        sa.CheckConstraint(
            "status IN ('requested', 'consented', 'refused')", name=op.f("ck_maintenance_requests_status_valid")
        ),
        sa.CheckConstraint('"end" > start', name=op.f("ck_maintenance_requests_end_after_start")),
    )
    op.create_index("ix_maintenance_requests_status", "maintenance_requests", ["status"])


def downgrade() -> None:
    op.drop_index("ix_maintenance_requests_status", table_name="maintenance_requests")
    op.drop_table("maintenance_requests")
