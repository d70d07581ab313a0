"""How late the event loop runs: the health of a process whose chats all share one loop.

Every adapter, the Discord gateway's heartbeats and Telegram's polling included, runs in one event loop,
and the recognizer's threads share the interpreter with it. When the loop is held up (a compile holding
the GIL, a blocking call by mistake), everything waits: discord.py logs "Can't keep up, websocket is 41.3s
behind", interactions miss their 3 seconds. `LoopLag` measures it the simple way: it sleeps for `interval`
again and again, and how much later than asked it wakes up is how long the loop could run nothing.
It keeps the worst lag since it started and over the last minutes, and logs a warning when the loop was
held up for `warn_after` seconds or more (at most one line a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)


class LoopLag:
    """Measures the running loop's lag from `start()` to `stop()`; `worst` and `recent()` say what it saw."""

    def __init__(self, interval: float = 0.1, warn_after: float = 1.0, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self.window = window
        self.clock = clock
        self.worst = 0.0                                   # seconds, since start
        self._peak = 0.0                                   # since the last peak()
        self._recent: deque[tuple[float, float]] = deque()  # (second it was seen, worst lag in that second)
        self._warned_at: float | None = None
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start measuring the running loop (again, when it was stopped or its loop ended)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="event-loop lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def record(self, lag: float) -> None:
        """One measurement: the loop ran `lag` seconds later than asked."""
        now = self.clock()
        self.worst = max(self.worst, lag)
        self._peak = max(self._peak, lag)
        second = float(int(now))
        if self._recent and self._recent[-1][0] == second:
            self._recent[-1] = (second, max(self._recent[-1][1], lag))
        else:
            self._recent.append((second, lag))
        while self._recent and self._recent[0][0] < now - self.window:
            self._recent.popleft()
        if lag >= self.warn_after and (self._warned_at is None or now - self._warned_at >= 60.0):
            self._warned_at = now
            log.warning("the event loop was held up for %.1f s (chats, heartbeats and web requests waited); "
                        "worst since start %.1f s", lag, self.worst)

    def peak(self) -> float:
        """The worst lag since the last `peak()` (or since start): one phase's worst, then the next's."""
        worst, self._peak = self._peak, 0.0
        return worst

    def recent(self) -> float:
        """The worst lag over the last `window` seconds."""
        cutoff = self.clock() - self.window
        return max((lag for second, lag in self._recent if second >= cutoff), default=0.0)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.record(max(0.0, loop.time() - asked))
