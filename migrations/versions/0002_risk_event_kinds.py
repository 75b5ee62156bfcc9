"""crisis events: kind (crisis, check, lapse) and the answer to the direct question

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crisis_events") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), server_default="crisis", nullable=False))
        batch.add_column(sa.Column("answer", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("answered_at", bot.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crisis_events") as batch:
        batch.drop_column("answered_at")
        batch.drop_column("answer")
        batch.drop_column("kind")
