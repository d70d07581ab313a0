"""Opening the database: SQLite by default (a file in the user's data directory), PostgreSQL via a URL.

A fresh or older database is upgraded to the current schema with Alembic when it is opened.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

APP_NAME = "aniface"


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("ANIFACE_DATA_DIR") or user_data_dir(APP_NAME, appauthor=False))


def default_database_url() -> str:
    """$DATABASE_URL, else an SQLite file in the user's data directory."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return normalise_url(url)
    directory = default_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'aniface.sqlite3'}"


def normalise_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


SQLITE_BUSY_TIMEOUT_S = 30


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
    return create_engine(url, pool_pre_ping=True)


class Database:
    """An engine and a session factory; `transaction()` commits on success, rolls back on error."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self.url = normalise_url(url or default_database_url())
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if upgrade:
            self.upgrade()

    def upgrade(self, revision: str = "head") -> None:
        from bot.storage.migrate import upgrade

        upgrade(self.engine, revision)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        """The URL without its password, for logs and messages."""
        return self.engine.url.render_as_string(hide_password=True)
