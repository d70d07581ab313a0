"""Albums: pictures posted together (a Telegram media group) arrive one message at a time, and behind a
load balancer each may reach another replica. Every part is stored (bot/storage/albums.py); the part that
opens an album gets a claim, and only its process answers: it waits until no part has come for
`quiet_s` seconds, then takes every part at once and closes the album. A part that comes after that
opens it again and is answered on its own, as a late part was in one process.

The parts are the adapter's own serialisation of its messages (`payload`); the core keeps them, decides
who answers and when, and hands them back.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta, timezone

from bot.messages import AlbumClaim, AlbumKey, AlbumPart
from bot.storage.albums import AlbumStore

#: an album not answered after this (its owner was killed) is dropped at the next start
KEEP_ALBUMS = timedelta(days=1)


class Albums:
    def __init__(self, store: AlbumStore) -> None:
        self.store = store

    async def add(self, platform: str, chat_id: str, album_id: str, part: AlbumPart) -> AlbumClaim | None:
        """Store a part; the claim when the caller is to answer the album (`complete`), else None."""
        key = AlbumKey(platform, chat_id, album_id)
        token = secrets.token_hex(16)
        owner = await asyncio.to_thread(self.store.add_part, key, part,
                                        token)
        return AlbumClaim(key, token) if owner else None

    async def complete(self, claim: AlbumClaim, quiet_s: float) -> list[AlbumPart]:
        """Wait until no part of the album has come for `quiet_s` seconds, then close it and return its parts
        (whichever process stored them), in the order of their ids."""
        while True:
            quiet_since = datetime.now(timezone.utc) - timedelta(seconds=quiet_s)
            parts = await asyncio.to_thread(self.store.close_if_quiet, claim.key, claim.token, quiet_since)
            if parts is not None:
                return sorted(parts, key=_order)
            last = await asyncio.to_thread(self.store.last_part_at, claim.key, claim.token)
            if last is None:  # not this claim's (cannot happen while it waits): nothing to answer
                return []
            wait = (_aware(last) - quiet_since).total_seconds()
            await asyncio.sleep(min(max(wait, 0.01), quiet_s))

    def forget_old(self) -> int:
        return self.store.forget_before(datetime.now(timezone.utc) - KEEP_ALBUMS)


def _aware(moment: datetime) -> datetime:
    """SQLite gives stored times back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _order(part: AlbumPart) -> tuple[int, str]:
    return (int(part.part_id), "") if part.part_id.isdigit() else (0, part.part_id)
