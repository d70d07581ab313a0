"""The SQL of albums whose parts reach different processes (bot/albums.py has the rule).

Both writes start on the album's row, so they queue behind each other on it (PostgreSQL's row lock,
SQLite's one writer): a part is either stored before the owner closes the album, and taken with it, or
finds the album closed and opens it again under its own claim. No part falls between the two.

An album whose owner died (SIGKILL, a lost machine) stays open under a claim nobody holds; `take_overdue`
closes it for another process with the owner's own conditional UPDATE (`WHERE open AND last_part_at <
<overdue>`, no claim): of two processes that read the same album, the second's UPDATE matches no row
(PostgreSQL re-checks the WHERE once the first commits; SQLite has one writer), so each album is taken
once, with its parts, in one transaction. The same statement on both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, case, delete, select, update
from sqlalchemy.orm import Session

from bot.messages import AlbumKey, AlbumPart
from bot.storage.db import Database
from bot.storage.models import Album, StoredAlbumPart, utcnow
from bot.storage.upsert import insert_for


class AlbumStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def add_part(self, key: AlbumKey, part: AlbumPart, claim: str) -> bool:
        """Store a part; True when `claim` now owns the album (this part opened it, new or closed)."""
        now = utcnow()
        insert = insert_for(self.database.engine.dialect.name)
        opening = insert(Album).values(platform=key.platform, chat_id=key.chat_id, album_id=key.album_id,
                                       claim=claim, open=True, last_part_at=now)
        # an open album keeps its owner; a closed one is opened again by this part
        upsert = opening.on_conflict_do_update(
            index_elements=["platform", "chat_id", "album_id"],
            set_={"claim": case((Album.open, Album.claim), else_=opening.excluded.claim),
                  "open": True, "last_part_at": now},
        ).returning(Album.claim)
        row = insert(StoredAlbumPart).values(platform=key.platform, chat_id=key.chat_id, album_id=key.album_id,
                                             part_id=part.part_id, payload=part.payload, asked=part.asked,
                                             received_at=now)
        with self.database.transaction() as session:
            owner = session.execute(upsert).scalar_one()
            session.execute(row.on_conflict_do_nothing())  # the same message twice is one part
        return owner == claim

    def close_if_quiet(self, key: AlbumKey, claim: str, quiet_since: datetime) -> list[AlbumPart] | None:
        """Close the album and take its parts when `claim` owns it and no part came after `quiet_since`;
        None when one did (or it is not this claim's any more)."""
        with self.database.transaction() as session:
            return self._close(session, key, Album.claim == claim, Album.last_part_at <= quiet_since)

    @staticmethod
    def _close(session: Session, key: AlbumKey, *conditions: ColumnElement[bool]) -> list[AlbumPart] | None:
        """Close the open album where `conditions` hold and take its parts; None when it is not (any more)."""
        closing = (update(Album)
                   .where(Album.platform == key.platform, Album.chat_id == key.chat_id, Album.album_id == key.album_id,
                          Album.open.is_(True), *conditions)
                   .values(open=False).returning(Album.claim))
        if session.execute(closing).first() is None:
            return None
        of_album = (StoredAlbumPart.platform == key.platform, StoredAlbumPart.chat_id == key.chat_id,
                    StoredAlbumPart.album_id == key.album_id)
        parts = session.scalars(select(StoredAlbumPart).where(*of_album)).all()
        session.execute(delete(StoredAlbumPart).where(*of_album))
        return [AlbumPart(p.part_id, p.payload, p.asked) for p in parts]

    def last_part_at(self, key: AlbumKey, claim: str) -> datetime | None:
        """When the newest part of the album came, while `claim` owns it open; None otherwise."""
        with self.database.transaction() as session:
            return session.scalar(select(Album.last_part_at).where(
                Album.platform == key.platform, Album.chat_id == key.chat_id, Album.album_id == key.album_id,
                Album.open.is_(True), Album.claim == claim))

    def forget_before(self, cutoff: datetime) -> int:
        """Drop albums (and their parts) whose last part came before `cutoff`."""
        with self.database.transaction() as session:
            return session.execute(delete(Album).where(Album.last_part_at < cutoff)).rowcount

    def take_overdue(self, platform: str, overdue_before: datetime, limit: int = 20) -> list[tuple[AlbumKey, list[AlbumPart]]]:
        """Close the open albums of `platform` whose last part came before `overdue_before` (their owner
        should have closed them long ago) and take their parts: each album this call won, with its parts."""
        with self.database.transaction() as session:
            overdue = session.execute(
                select(Album.chat_id, Album.album_id)
                .where(Album.platform == platform, Album.open.is_(True), Album.last_part_at < overdue_before)
                .order_by(Album.last_part_at).limit(limit)).all()
        taken = []
        for chat_id, album_id in overdue:
            key = AlbumKey(platform, chat_id, album_id)
            with self.database.transaction() as session:  # one album a transaction: no lock waits on another
                parts = self._close(session, key, Album.last_part_at < overdue_before)
            if parts is not None:
                taken.append((key, parts))
        return taken
