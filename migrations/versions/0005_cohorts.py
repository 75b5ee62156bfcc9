"""cohorts: therapy groups, members, and one reminder per member per meeting

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cohorts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=120), nullable=False, unique=True),
        sa.Column("meeting_days", sa.String(length=7), nullable=False),
        sa.Column("meeting_time", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("reminder_text", sa.Text(), nullable=False),
        sa.Column("reminder_minutes_before", sa.Integer(), nullable=False),
        sa.Column("counselor_id", sa.Integer(), sa.ForeignKey("counselors.id"), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("cohort_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_participants_cohort_id", "cohorts", ["cohort_id"], ["id"])
        batch.create_index("ix_participants_cohort_id", ["cohort_id"])
    op.create_table(
        "cohort_reminders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cohort_id", sa.Integer(), sa.ForeignKey("cohorts.id"), nullable=False),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("meeting_date", sa.Date(), nullable=False),
        sa.Column("send_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("outbox.id"), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("participant_id", "cohort_id", "meeting_date"),
    )


def downgrade() -> None:
    op.drop_table("cohort_reminders")
    with op.batch_alter_table("participants") as batch:
        batch.drop_index("ix_participants_cohort_id")
        batch.drop_constraint("fk_participants_cohort_id", type_="foreignkey")
        batch.drop_column("cohort_id")
    op.drop_table("cohorts")
