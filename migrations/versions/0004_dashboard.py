"""dashboard: counselor roles and two-factor, login failures, plan reasons, acknowledgement notes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("counselors") as batch:
        batch.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("session_token", sa.String(length=64), nullable=True))
    with op.batch_alter_table("safety_plans") as batch:
        batch.add_column(sa.Column("reasons_for_living", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("crisis_events") as batch:
        batch.add_column(sa.Column("ack_outcome", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("ack_note", sa.Text(), nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_key_at", "login_failures", ["key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key_at", table_name="login_failures")
    op.drop_table("login_failures")
    with op.batch_alter_table("crisis_events") as batch:
        batch.drop_column("ack_note")
        batch.drop_column("ack_outcome")
    with op.batch_alter_table("safety_plans") as batch:
        batch.drop_column("reasons_for_living")
    with op.batch_alter_table("counselors") as batch:
        batch.drop_column("session_token")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
        batch.drop_column("active")
        batch.drop_column("is_admin")
