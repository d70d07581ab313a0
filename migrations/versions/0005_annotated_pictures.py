"""annotated_pictures: the web page's annotated answers, kept a while so that any replica serves them
(they were one process's memory).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "annotated_pictures",
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"],
                                name=op.f("fk_annotated_pictures_prediction_id_predictions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_annotated_pictures")),
    )
    op.create_index(op.f("ix_annotated_pictures_created_at"), "annotated_pictures", ["created_at"])


def downgrade() -> None:
    op.drop_table("annotated_pictures")
