"""Engines: the URL spellings people use, SQLite's pragmas and WAL, one busy timeout for every connection.

Shared by `bot.storage.db` (the running bot) and `bot.storage.migrate` (schema changes), which import
it and not each other.
"""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError


def normalise_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


#: how long an SQLite connection waits for another one's lock (a write, a migration, the switch to WAL)
SQLITE_BUSY_TIMEOUT_S = 60


def use_write_ahead_log(dbapi_connection: sqlite3.Connection, timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
    """Switch an SQLite file to WAL, waiting for other processes that are switching it at the same time.

    Changing the journal mode needs the file to itself, and SQLite answers "database is locked"
    at once, without the busy timeout, while another connection holds it (several processes
    opening a fresh database together); so retry until the timeout.
    """
    deadline = time.monotonic() + timeout_s
    delay_s = 0.005
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + delay_s > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.25)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001
            connection.execute("PRAGMA foreign_keys=ON")
            use_write_ahead_log(connection)
            # FULL: a commit is on disk before we acknowledge a correction
            connection.execute("PRAGMA synchronous=FULL")

        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "handle_error", _denied_is_unwritable)
    return engine


#: SQLSTATE of PostgreSQL's "permission denied" (a role that may only read).
INSUFFICIENT_PRIVILEGE = "42501"


def _denied_is_unwritable(context) -> OperationalError | None:  # noqa: ANN001 - an ExceptionContext
    """A write the server's permissions refuse is storage that cannot be written, like a read-only server
    (an OperationalError, which the core answers with "I can't save corrections right now"), not a bug
    in our SQL, which is what psycopg's ProgrammingError would otherwise say."""
    original = context.original_exception
    if getattr(original, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
        return OperationalError(context.statement, context.parameters, original)
    return None
