"""The gallery's events: what every process must learn from a correction, and how it is announced.

A correction writes its events in its own transaction (`record`); on PostgreSQL the same transaction
calls `pg_notify`, which PostgreSQL delivers only once it commits, to wake the other processes. They
read the events back by id (`Repository.changes`): the table is the truth, a notification only says
"look now".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.storage.models import GalleryEvent

#: the LISTEN/NOTIFY channel (bot/storage/listen.py listens on it)
CHANNEL = "aniface_gallery"
FACE = "face"   # a face's votes changed: its settled label is read again
NAME = "name"   # a new character
ALIAS = "alias"  # another name of a character (its `name` is the alias; the aliases table has the rest)


@dataclass(frozen=True)
class FaceNow:
    """A face as its votes settle it now: what a process's gallery learns (label None: forget it)."""

    face_id: int
    embedding: bytes | None
    embedding_key: str | None
    label: str | None


@dataclass(frozen=True)
class Changes:
    """Events read back: their ids, the new names and the faces they changed (as they are now)."""

    ids: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    faces: tuple[FaceNow, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # (alias, the character's name)


def record(session: Session, kind: str, *, face_id: int | None = None, name: str | None = None) -> None:
    """Add an event to the transaction under way; on PostgreSQL also wake the listeners at its commit."""
    event = GalleryEvent(kind=kind, face_id=face_id, name=name)
    session.add(event)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :payload)"),
                        {"channel": CHANNEL, "payload": str(event.id)})
