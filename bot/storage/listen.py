"""Wake-ups from PostgreSQL: one psycopg 3 async connection in LISTEN on the gallery's channel.

A notification says only "look now": the events table is the truth (bot/storage/events.py), and a
process that misses one (a lost connection, a restart) still catches up at its next periodic look.
The connection is direct (PgBouncer in transaction mode cannot hold a LISTEN) and in autocommit, which
psycopg needs to deliver notifications while idle.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import make_url

from bot.storage.events import CHANNEL

log = logging.getLogger(__name__)


def conninfo(url: str) -> str:
    """A libpq URI from a SQLAlchemy `postgresql+psycopg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """`wait(timeout)` returns at the first notification on `channel`, or after `timeout` seconds."""

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._conninfo = conninfo(url)
        self._channel = channel
        self._connection = None  # psycopg.AsyncConnection, opened on first use and after a failure
        self.connected = asyncio.Event()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (None while there is none)."""
        connection = self._connection
        return None if connection is None or connection.closed else connection.info.backend_pid

    async def wait(self, timeout: float) -> bool:
        """True when a notification arrived; False after `timeout` (or while the server cannot be reached:
        the periodic catch-up goes on without it)."""
        import psycopg

        try:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                await self._connection.execute(f'LISTEN "{self._channel}"')
                self.connected.set()
            async for _ in self._connection.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error as error:
            log.warning("listening for gallery events failed (%s); catching up every %.1f s meanwhile",
                        error, timeout)
            await self.close()
            await asyncio.sleep(timeout)
            return False

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self.connected.clear()
        if connection is not None and not connection.closed:
            await connection.close()
