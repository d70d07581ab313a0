"""Albums: pictures posted together (a Telegram media group) arrive one message at a time, and behind a
load balancer each may reach another replica. Every part is stored (bot/storage/albums.py); the part that
opens an album gets a claim, and only its process answers: it waits until no part has come for
`quiet_s` seconds, then takes every part at once and closes the album. A part that comes after that
opens it again and is answered on its own, as a late part was in one process.

The parts are the adapter's own serialisation of its messages (`payload`); the core keeps them, decides
who answers and when, and hands them back.

An owner can die between the first part and the answer (SIGKILL, a lost machine): the album would wait in
the table for ever. So every process that answers albums (`answer_with`) looks every few seconds for
albums of its platforms that are overdue, open though no part came for their quiet time plus
`take_over_after` seconds, and takes them over: closes each and takes its parts, as the owner would have
(`AlbumStore.take_overdue`: one process wins each), then hands the parts to its adapter. A live owner
closes its album within its quiet time, long before; were it merely slow, its close finds the album
closed and it answers nothing: the album is still answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from bot.messages import AlbumClaim, AlbumKey, AlbumPart
from bot.storage.albums import AlbumStore
from bot.storage.db import STORAGE_ERRORS

log = logging.getLogger(__name__)

#: an album not answered after this (nobody could take it over) is dropped at the next start
KEEP_ALBUMS = timedelta(days=1)
#: seconds past an album's quiet time after which another process takes it over (ANIFACE_ALBUM_TAKEOVER)
TAKE_OVER_AFTER_S = 10.0

#: how an adapter answers an album it is handed, every part in hand (it starts its own task, so that its
#: stop drains it)
AnswerAlbum = Callable[[AlbumKey, list[AlbumPart]], None]


@dataclass(frozen=True)
class _Answerer:
    quiet_s: float
    answer: AnswerAlbum


class Albums:
    def __init__(self, store: AlbumStore, take_over_after: float = TAKE_OVER_AFTER_S) -> None:
        self.store = store
        self.take_over_after = take_over_after
        self._answerers: dict[str, _Answerer] = {}
        self._task: asyncio.Task | None = None

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

    # --- taking over the albums of a process that died ---------------------------------------------

    def answer_with(self, platform: str, quiet_s: float, answer: AnswerAlbum) -> Callable[[], None]:
        """From now on this process takes over `platform`'s overdue albums and hands each to `answer`;
        returns what ends that (an adapter that stops accepting work stops taking albums too)."""
        answerer = _Answerer(quiet_s, answer)
        self._answerers[platform] = answerer

        def stop_answering() -> None:
            if self._answerers.get(platform) is answerer:
                del self._answerers[platform]
        return stop_answering

    async def take_over_overdue(self) -> list[AlbumKey]:
        """One look: take every overdue album of the platforms answered here and hand each to its adapter."""
        taken = []
        for platform, answerer in list(self._answerers.items()):
            overdue_before = datetime.now(timezone.utc) - timedelta(seconds=answerer.quiet_s + self.take_over_after)
            for key, parts in await asyncio.to_thread(self.store.take_overdue, platform, overdue_before):
                log.warning("took over album %s in %s chat %s: its process never answered it",
                            key.album_id, platform, key.chat_id)
                taken.append(key)
                answerer.answer(key, sorted(parts, key=_order))
        return taken

    def start(self) -> None:
        """Look for overdue albums every half `take_over_after` (an overdue album waits at most 1.5 times it)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="aniface-albums")

    async def _run(self) -> None:
        every = max(self.take_over_after / 2, 0.1)
        while True:
            await asyncio.sleep(every)
            if not self._answerers:
                continue
            try:
                await self.take_over_overdue()
            except STORAGE_ERRORS:
                log.warning("looking for overdue albums failed; trying again in %.1f s", every, exc_info=True)
            except Exception:  # noqa: BLE001 - the look must outlive one bad album; the next one repairs
                log.exception("taking over overdue albums failed; trying again in %.1f s", every)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def forget_old(self) -> int:
        return self.store.forget_before(datetime.now(timezone.utc) - KEEP_ALBUMS)


def _aware(moment: datetime) -> datetime:
    """SQLite gives stored times back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _order(part: AlbumPart) -> tuple[int, str]:
    return (int(part.part_id), "") if part.part_id.isdigit() else (0, part.part_id)
