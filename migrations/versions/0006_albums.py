"""albums and album_parts: a Telegram media group's parts, which reach different replicas behind a load
balancer, collected in the database so that one replica answers each album once, with all its parts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "albums",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("album_id", sa.String(length=64), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("last_part_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", "album_id", name=op.f("pk_albums")),
    )
    op.create_index(op.f("ix_albums_last_part_at"), "albums", ["last_part_at"])
    op.create_table(
        "album_parts",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("album_id", sa.String(length=64), nullable=False),
        sa.Column("part_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("asked", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["platform", "chat_id", "album_id"],
                                ["albums.platform", "albums.chat_id", "albums.album_id"],
                                name=op.f("fk_album_parts_platform_albums"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("platform", "chat_id", "album_id", "part_id", name=op.f("pk_album_parts")),
    )


def downgrade() -> None:
    op.drop_table("album_parts")
    op.drop_index(op.f("ix_albums_last_part_at"), table_name="albums")
    op.drop_table("albums")
