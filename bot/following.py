"""Keeping this process's memory (gallery, name book) in step with the gallery events of every process.

`Follower.catch_up` reads the events this process has not applied, by id, and hands them to the
core's `apply`; it runs after every local correction (so the next picture benefits at once), when a
notification wakes the process (PostgreSQL), and every `interval` seconds whatever happens (the repair
for a lost notification, and the only way on SQLite).

Ids are handed out when a transaction inserts, not when it commits: on PostgreSQL a correction that
took id 7 may commit after one that took id 8. So `EventCursor` remembers the ids it skipped over
(`gaps`) and asks for them again until they appear or `GAP_PATIENCE_S` passes (a rolled-back
transaction leaves its id unused for ever). Applying twice is harmless: a face's event is applied as
the face's votes settle now, and a name is added once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from bot.storage.db import STORAGE_ERRORS
from bot.storage.events import Changes
from bot.storage.listen import Listener
from bot.storage.repository import Repository

log = logging.getLogger(__name__)

#: how long an id skipped over is asked for again (a correction's transaction lasts milliseconds)
GAP_PATIENCE_S = 30.0
#: at most this many skipped ids are remembered (a sequence that jumped, after a server crash)
MAX_GAPS = 1000
#: events read at once
BATCH = 500
#: events older than this are dropped when a process starts: running processes applied them within
#: seconds, and a starting one loads the tables themselves (a process cut off from the database for
#: longer than this would miss them: restart it)
KEEP_EVENTS = timedelta(days=7)


class EventCursor:
    """Which events this process has applied: every id up to `high`, except the `gaps`."""

    def __init__(self, high: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.high = high
        self.gaps: dict[int, float] = {}  # id -> when it was first missed
        self._clock = clock

    def missing(self, ids: Iterable[int]) -> None:
        """Ids at or below `high` that have not been seen (at start: ids of transactions still open)."""
        now = self._clock()
        for event_id in ids:
            self.gaps.setdefault(event_id, now)
        self._bound()

    def wanted(self) -> tuple[int, tuple[int, ...]]:
        """(read the ids above this, and these ids too); gaps waited for long enough are given up."""
        now = self._clock()
        for event_id, since in list(self.gaps.items()):
            if now - since > GAP_PATIENCE_S:
                del self.gaps[event_id]
        return self.high, tuple(sorted(self.gaps))

    def advance(self, ids: Iterable[int]) -> None:
        """These ids are applied; any skipped over on the way up is a gap."""
        seen = sorted(set(ids))
        for event_id in seen:
            self.gaps.pop(event_id, None)
        above = [event_id for event_id in seen if event_id > self.high]
        if above:
            self.missing(set(range(self.high + 1, above[-1])) - set(above))
            self.high = above[-1]

    def _bound(self) -> None:
        while len(self.gaps) > MAX_GAPS:
            del self.gaps[min(self.gaps)]


class Follower:
    """Applies the events of every process to this one's memory, through `apply` (the core's rule)."""

    def __init__(self, store: Repository, apply: Callable[[Changes], None], listener: Listener | None,
                 interval: float) -> None:
        self.store = store
        self.apply = apply
        self.listener = listener
        self.interval = interval
        self.cursor = EventCursor()
        self._lock = threading.Lock()  # catch-ups run in threads: one at a time
        self._task: asyncio.Task | None = None

    @property
    def applied(self) -> int:
        """The newest event id applied here (what /healthz reports)."""
        return self.cursor.high

    def begin(self) -> None:
        """Start from the newest event; called before the core loads its memory from the tables, so
        that whatever commits meanwhile is applied again (harmless) rather than missed. The ids of
        the latest events that are not there yet may belong to transactions still open: gaps. Events
        older than KEEP_EVENTS go."""
        self.store.forget_events_before(datetime.now(timezone.utc) - KEEP_EVENTS)
        newest, present = self.store.recent_event_ids(MAX_GAPS)
        with self._lock:
            self.cursor = EventCursor(newest)
            recent = range(max(newest - MAX_GAPS, 0) + 1, newest + 1)
            self.cursor.missing(set(recent) - present)

    def catch_up(self) -> int:
        """Apply every event not applied yet; the newest id applied. Runs in a thread."""
        with self._lock:
            while True:
                after, also = self.cursor.wanted()
                changes = self.store.changes(after, also, BATCH)
                if changes.ids:
                    self.apply(changes)
                    self.cursor.advance(changes.ids)
                if len(changes.ids) < BATCH:
                    return self.cursor.high

    async def catch_up_quietly(self) -> None:
        """`catch_up`, logging a database that cannot be read: the next look repairs it."""
        try:
            await asyncio.to_thread(self.catch_up)
        except STORAGE_ERRORS:
            log.warning("catching up with the gallery events failed; trying again in %.1f s", self.interval,
                        exc_info=True)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="aniface-follower")

    async def _run(self) -> None:
        while True:
            try:
                if self.listener is not None:
                    await self.listener.wait(self.interval)
                else:
                    await asyncio.sleep(self.interval)
                await self.catch_up_quietly()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - following must outlive one bad look; the next one repairs
                log.exception("applying the gallery events failed; trying again in %.1f s", self.interval)
                await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
        if self.listener is not None:
            with contextlib.suppress(Exception):
                await self.listener.close()
