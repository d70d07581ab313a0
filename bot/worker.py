"""The recognizer's worker pool: heavy work off the event loop, behind a bounded queue."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class Busy(RuntimeError):
    """The queue in front of the recognizer is full: answer "busy", do not queue without end."""


class WorkerPool:
    """`await pool.run(fn, *args)` runs fn on one of `workers` threads; at most `max_waiting` more wait."""

    def __init__(self, workers: int = 2, max_waiting: int = 16) -> None:
        if workers < 1 or max_waiting < 0:
            raise ValueError("workers must be >= 1 and max_waiting >= 0")
        self.workers, self.max_waiting = workers, max_waiting
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
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        finally:
            with self._lock:
                self._in_flight -= 1

    def shutdown(self, wait: bool = True) -> None:
        """Finish what is in flight (wait=True) and stop the threads."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
