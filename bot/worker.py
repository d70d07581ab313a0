"""The recognizer's worker pool: heavy work off the event loop, behind a bounded queue."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from bot.memory import RELEASE_MODES, release_memory

T = TypeVar("T")

#: With release="idle", memory is given back this long after the last job ends, if no other began.
IDLE_RELEASE_DELAY_S = 1.0


class Busy(RuntimeError):
    """The queue in front of the recognizer is full: answer "busy", do not queue without end."""


class WorkerPool:
    """`await pool.run(fn, *args)` runs fn on one of `workers` threads; at most `max_waiting` more wait.

    `release` says when the memory the jobs freed is given back to the system (`bot.memory`): "idle"
    when the last job in flight ends (after a burst; it costs a job nothing), "each" after every job,
    "off" never.
    """

    def __init__(self, workers: int = 2, max_waiting: int = 16, release: str = "idle") -> None:
        if workers < 1 or max_waiting < 0:
            raise ValueError("workers must be >= 1 and max_waiting >= 0")
        if release not in RELEASE_MODES:
            raise ValueError(f"release must be one of {', '.join(RELEASE_MODES)}")
        self.workers, self.max_waiting, self.release = workers, max_waiting, release
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recognizer")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, function: Callable[..., T], *args) -> T:  # noqa: ANN002
        with self._lock:
            if self._in_flight >= self.workers + self.max_waiting:
                raise Busy("the recognizer is busy")
            self._in_flight += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        finally:
            with self._lock:
                self._in_flight -= 1
                idle = self._in_flight == 0
            if self.release == "each":
                self._release(loop)
            elif self.release == "idle" and idle:
                # a moment later, when the replies built from the last results have been sent and freed
                loop.call_later(IDLE_RELEASE_DELAY_S, self._release_if_idle, loop)

    def _release_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._in_flight == 0:  # else the burst goes on, and its own end releases
            self._release(loop)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        """Trim on a worker thread, not awaited: no reply waits for it."""
        try:
            loop.run_in_executor(self._executor, release_memory)
        except RuntimeError:  # shut down meanwhile: the process is ending anyway
            pass

    def shutdown(self, wait: bool = True) -> None:
        """Finish what is in flight (wait=True) and stop the threads."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
