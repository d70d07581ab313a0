"""What the local fake servers (tests/telegram_fake.py, tests/discord_fake.py) have in common: an aiohttp
app served on 127.0.0.1 at a port the OS picks, the log of the calls the client made (and waiting on
it), and the queue of injected faults. Each fake builds its own routes and answers; this is plumbing only.

A fake subclasses `LocalFakeServer[ItsCall, ItsFault]`, adds its routes in `_add_routes` and appends
each call it receives to `self.calls`. A call and a fault are filed under a `name` (a Bot API method,
a Discord route...), which is what `calls_to`, `wait_for` and `_fault_for` look them up by.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Generic, Protocol, TypeVar

from aiohttp import web

# Above anything the real APIs accept, so that an oversized upload reaches the fake's own limit checks
# (and gets the real API's error) instead of aiohttp's 413.
CLIENT_MAX_SIZE = 64 * 1024 * 1024
POLL_INTERVAL = 0.02


class RecordedCall(Protocol):
    """A call as a fake records it."""

    status: int

    @property
    def name(self) -> str: ...

    @property
    def ok(self) -> bool: ...


class QueuedFault(Protocol):
    """An injected fault, for the next `times` calls filed under `name`."""

    times: int

    @property
    def name(self) -> str: ...


CallT = TypeVar("CallT", bound=RecordedCall)
FaultT = TypeVar("FaultT", bound=QueuedFault)


class LocalFakeServer(ABC, Generic[CallT, FaultT]):
    def __init__(self) -> None:
        self.calls: list[CallT] = []
        self._faults: list[FaultT] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- server --------------------------------------------------------------------------------

    @abstractmethod
    def _add_routes(self, app: web.Application) -> None:
        """Route the fake's endpoints on `app`."""

    async def start(self) -> None:
        app = web.Application(client_max_size=CLIENT_MAX_SIZE)
        self._add_routes(app)
        # no access log: it would only clutter test output; a short shutdown timeout: close() must not
        # wait long on handlers still running (a long poll, an open websocket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # port 0: a free port, so that fakes never collide
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- injected faults -----------------------------------------------------------------------

    def _fault_for(self, name: str) -> FaultT | None:
        """The first fault queued for `name` with uses left, using one up; None when there is none."""
        for fault in self._faults:
            if fault.name == name and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    # --- what the client did -------------------------------------------------------------------

    def calls_to(self, name: str, ok: bool | None = True, where: Callable[[CallT], bool] | None = None) -> list[CallT]:
        return [c for c in self.calls if c.name == name and (ok is None or c.ok == ok)
                and (where is None or where(c))]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 30.0, ok: bool | None = True,
                       where: Callable[[CallT], bool] | None = None) -> list[CallT]:
        """The first `count` calls filed under `name` (successful ones by default), waiting for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls_to(name, ok, where)
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                seen = ", ".join(f"{c.name}:{c.status}" for c in self.calls)
                raise AssertionError(f"expected {count} {name} call(s) within {timeout} s; calls so far: {seen}")
            await asyncio.sleep(POLL_INTERVAL)

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        """`predicate()` once it is truthy, polling until `timeout`."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(POLL_INTERVAL)
        return value
