"""Every handler runs as a tracked job: `drain()` waits for the jobs in flight when the bot stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import AsyncIterator

log = logging.getLogger(__name__)


class Jobs:
    """The tasks in flight; `accepting` turns false once stopping has begun."""

    def __init__(self, drain_timeout: float) -> None:
        self.drain_timeout = drain_timeout
        self.accepting = True
        self._jobs: set[asyncio.Task] = set()

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        """Track the running task, so that stopping waits for it."""
        task = asyncio.current_task()
        if task is not None:
            self._jobs.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._jobs.discard(task)

    def spawn(self, coroutine, name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task


    async def drain(self, timeout: float | None = None) -> None:
        """Stop taking new work and wait (up to `timeout`) for the jobs in flight, acks included."""
        self.accepting = False
        current = asyncio.current_task()
        deadline = time.monotonic() + (self.drain_timeout if timeout is None else timeout)
        while jobs := [job for job in self._jobs if job is not current and not job.done()]:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("Discord: %d job(s) still running after the drain timeout; leaving them", len(jobs))
                return
            await asyncio.wait(jobs, timeout=left)
