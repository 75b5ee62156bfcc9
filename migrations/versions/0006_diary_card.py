"""diary card: opt-in and time per participant, answers per day, triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("diary_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("diary_time", sa.String(length=5), nullable=False, server_default="20:00"))
    op.create_table(
        "diary_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("item", sa.String(length=24), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("participant_id", "local_date", "item", name="uq_diary_item_per_day"),
    )
    op.create_index("ix_diary_entries_participant_id", "diary_entries", ["participant_id"])
    op.create_table(
        "triggers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_triggers_participant_id", "triggers", ["participant_id"])


def downgrade() -> None:
    op.drop_index("ix_triggers_participant_id", table_name="triggers")
    op.drop_table("triggers")
    op.drop_index("ix_diary_entries_participant_id", table_name="diary_entries")
    op.drop_table("diary_entries")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("diary_time")
        batch.drop_column("diary_enabled")
