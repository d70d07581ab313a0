"""name_offers: the "did you mean ...?" memory, shared by every process (it was one process's dict).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "name_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["face_id"], ["faces.id"],
                                name=op.f("fk_name_offers_face_id_faces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_name_offers")),
        sa.UniqueConstraint("user_hash", "face_id", name=op.f("uq_name_offers_user_hash")),
    )
    op.create_index(op.f("ix_name_offers_face_id"), "name_offers", ["face_id"])


def downgrade() -> None:
    op.drop_table("name_offers")
