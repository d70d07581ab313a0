"""i18n: a chat's fixed language (chat_settings.language, set with `/settings language ja`).

Aliases of characters ("八神コウ" for Yagami Kou) were in the schema from 0001 (`aliases`); what is new for
them is the gallery event of kind "alias" (a String(8) already holds it), so that every process learns an
alias an admin added.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("chat_settings", sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_settings") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("language")
