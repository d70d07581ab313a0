"""gallery_events: what every process learns from a correction (a face's votes changed, a new name),
written in the correction's transaction and read by id (bot/following.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "gallery_events",
        # BIGSERIAL on PostgreSQL; on SQLite an INTEGER PRIMARY KEY, its 64-bit rowid
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["face_id"], ["faces.id"],
                                name=op.f("fk_gallery_events_face_id_faces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gallery_events")),
    )


def downgrade() -> None:
    op.drop_table("gallery_events")
