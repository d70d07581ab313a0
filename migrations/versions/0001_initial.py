"""The initial schema: characters and aliases, predictions with their faces and reply messages, votes,
per-chat settings, pending questions (bot/storage/models.py as of aniface 0.1).

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Constraint and index names follow bot.storage.models.NAMING; they are spelled out here (op.f) so
# that this revision creates the same names whatever the naming convention becomes later.


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
        sa.UniqueConstraint("key", name=op.f("uq_characters_key")),
    )

    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["character_id"], ["characters.id"],
                                name=op.f("fk_aliases_character_id_characters"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("key", name=op.f("uq_aliases_key")),
    )
    op.create_index(op.f("ix_aliases_character_id"), "aliases", ["character_id"])

    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("sender_hash", sa.String(length=64), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    op.create_index(op.f("ix_predictions_image_sha256"), "predictions", ["image_sha256"])
    op.create_index(op.f("ix_predictions_created_at"), "predictions", ["created_at"])
    op.create_index("ix_predictions_lookup", "predictions", ["platform", "chat_id", "message_id"])

    op.create_table(
        "reply_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"],
                                name=op.f("fk_reply_messages_prediction_id_predictions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_messages")),
        sa.UniqueConstraint("platform", "chat_id", "message_id", name=op.f("uq_reply_messages_platform")),
    )
    op.create_index(op.f("ix_reply_messages_prediction_id"), "reply_messages", ["prediction_id"])

    op.create_table(
        "faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("w", sa.Integer(), nullable=False),
        sa.Column("h", sa.Integer(), nullable=False),
        sa.Column("detection_score", sa.Float(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("crop_png", sa.LargeBinary(), nullable=False),
        sa.Column("crop_sha256", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_key", sa.String(length=32), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("predicted_name", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"],
                                name=op.f("fk_faces_prediction_id_predictions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faces")),
        sa.UniqueConstraint("prediction_id", "number", name=op.f("uq_faces_prediction_id")),
    )
    op.create_index(op.f("ix_faces_prediction_id"), "faces", ["prediction_id"])
    op.create_index(op.f("ix_faces_crop_sha256"), "faces", ["crop_sha256"])

    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["face_id"], ["faces.id"],
                                name=op.f("fk_votes_face_id_faces"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["character_id"], ["characters.id"],
                                name=op.f("fk_votes_character_id_characters"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("face_id", "platform", "user_hash", name=op.f("uq_votes_face_id")),
    )
    op.create_index(op.f("ix_votes_face_id"), "votes", ["face_id"])
    op.create_index(op.f("ix_votes_character_id"), "votes", ["character_id"])
    op.create_index(op.f("ix_votes_updated_at"), "votes", ["updated_at"])

    op.create_table(
        "chat_settings",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("answer_mode", sa.String(length=8), nullable=False),
        sa.Column("unknown_threshold", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("platform", "chat_id", name=op.f("pk_chat_settings")),
    )

    op.create_table(
        "pending_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("question_message_id", sa.String(length=64), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["face_id"], ["faces.id"],
                                name=op.f("fk_pending_questions_face_id_faces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_questions")),
        sa.UniqueConstraint("platform", "chat_id", "user_hash", name=op.f("uq_pending_questions_platform")),
    )


def downgrade() -> None:
    # Children before parents; a table's indexes go with it.
    for table in ("pending_questions", "chat_settings", "votes", "faces", "reply_messages", "predictions",
                  "aliases", "characters"):
        op.drop_table(table)
