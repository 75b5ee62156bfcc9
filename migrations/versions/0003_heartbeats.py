"""heartbeats: when the scheduler last ticked, for health checks and metrics

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("beat_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("host", sa.String(length=120), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
