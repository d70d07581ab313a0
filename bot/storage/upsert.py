"""`INSERT ... ON CONFLICT` for the two backends aniface supports (bot/storage/engine.py)."""

from __future__ import annotations


def insert_for(dialect: str):  # noqa: ANN201 - the dialect's `insert`, which has on_conflict_do_nothing/update
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")
    return insert
