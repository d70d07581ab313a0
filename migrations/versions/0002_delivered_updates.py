"""Updates pushed by a platform (Telegram's webhook), recorded before they are handled, so that a
redelivered update is dropped by whichever replica it reaches (bot/storage/models.py DeliveredUpdate).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "delivered_updates",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "update_id", name=op.f("pk_delivered_updates")),
    )
    op.create_index(op.f("ix_delivered_updates_received_at"), "delivered_updates", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_delivered_updates_received_at"), table_name="delivered_updates")
    op.drop_table("delivered_updates")
