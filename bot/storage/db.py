"""The database: an engine and sessions. SQLite by default (a file in the data directory), PostgreSQL via a URL.

The URL comes from `bot.config.Settings` (this module reads no environment). A fresh or older
database is upgraded to the current schema with Alembic when it is opened, unless `upgrade=False`
(the composition root upgrades it itself, `bot.storage.migrate.upgrade`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import text
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.engine import make_engine, normalise_url

if TYPE_CHECKING:
    from bot.storage.listen import Listener

#: what a database that cannot be written raises (disk full, a read-only file or server, lost connection):
#: the core answers "I can't save corrections right now" instead of failing
STORAGE_ERRORS = (OperationalError, InternalError)


class Database:
    """An engine and a session factory; `transaction()` commits on success, rolls back on error."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = normalise_url(url)
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

    def unwritable_reason(self) -> str | None:
        """Why this database cannot be written now, or None when it can: a real write (the schema
        version set to itself) in a transaction that is rolled back, so nothing changes."""
        try:
            with self.engine.connect() as connection:
                with connection.begin() as transaction:
                    connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                    transaction.rollback()
        except STORAGE_ERRORS as error:
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()
            return detail[0] if detail else type(error).__name__
        return None

    def listener(self) -> "Listener | None":
        """What wakes this process when another commits gallery events: a LISTEN connection on
        PostgreSQL; None on SQLite, which has no notifications (processes look every so often)."""
        if self.engine.dialect.name != "postgresql":
            return None
        from bot.storage.listen import Listener

        return Listener(self.url)

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        """The URL without its password, for logs and messages."""
        return self.engine.url.render_as_string(hide_password=True)
