"""The live collector's heartbeat: one row per collector name (when it started, when it last completed a
cycle, whether it is running). A restart dates the blind gap at the last heartbeat (SPEC §2).

Written by hand from ``HeartbeatRow`` in ``monitor/storage/tables.py`` (the test suite checks that the two
agree).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
