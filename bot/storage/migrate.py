"""Schema migrations driven from Python (Alembic, scripts in the `migrations` package; no alembic.ini).

    from bot.storage.migrate import upgrade, downgrade, current_revision
    upgrade(engine)                 # to the newest revision ("head")
    downgrade(engine, "base")       # drops every table
    current_revision(engine)        # "0001", or None for an empty database

Several processes may open the same database at once (the bot, `aniface db upgrade`, a second
worker). Each migration runs in ONE transaction that first takes a database-wide lock, so only one
process changes the schema and the others, once they get the lock, find it done:

- PostgreSQL: `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`; released by the commit or rollback, so
  it cannot leak through the connection pool. DDL is transactional: a failed migration leaves nothing.
- SQLite: the migration runs on its own connection in a real transaction opened with
  `BEGIN IMMEDIATE` (the database's write lock; a second migrator waits up to the busy timeout).
  SQLite's DDL is transactional too, but only when we emit BEGIN ourselves: Python's sqlite3 module
  otherwise commits every CREATE/ALTER on its own. On that connection `foreign_keys` is OFF, as
  Alembic's batch mode needs (recreating a table must not fire ON DELETE CASCADE into its children);
  `PRAGMA foreign_key_check` runs before the commit instead.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.pool import NullPool

from bot.storage.engine import SQLITE_BUSY_TIMEOUT_S, make_engine, normalise_url, use_write_ahead_log

log = logging.getLogger(__name__)

# Any fixed 64-bit number, the same in every process of every version: b"aniface" as an integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"aniface", "big")


class MigrationError(RuntimeError):
    """A migration left the database inconsistent (and was rolled back)."""


def migrations_directory() -> Path:
    """Where the installed `migrations` package (env.py, script.py.mako, versions/) lives."""
    return Path(str(resources.files("migrations")))


def alembic_config(url_or_engine: str | URL | Engine | None = None) -> Config:
    """An Alembic `Config` built in memory: the packaged scripts, and the database's URL if given.

    With an Engine, `config.attributes["engine"]` holds it too. Callers that already have a
    connection put it in `config.attributes["connection"]`; migrations/env.py then uses it as is.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    if url_or_engine is not None:
        if isinstance(url_or_engine, Engine):
            config.attributes["engine"] = url_or_engine
            url = url_or_engine.url
        elif isinstance(url_or_engine, URL):
            url = url_or_engine
        else:
            url = make_url(normalise_url(url_or_engine))
        # ConfigParser interpolates "%": a password may contain one.
        config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest revision in the packaged scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Every revision in the packaged scripts (a database at another one was migrated by a newer aniface)."""
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database that was never migrated (or is at base)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (a no-op when it is there already)."""
    with migration_connection(engine) as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision`; "base" drops every table aniface created."""
    with migration_connection(engine) as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that holds the migration lock; commits on success."""
    if engine.dialect.name == "sqlite" and not _is_memory_sqlite(engine.url):
        sqlite_engine = _sqlite_migration_engine(engine.url)
        try:
            with sqlite_engine.connect() as connection, connection.begin():  # BEGIN IMMEDIATE
                yield connection
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise MigrationError(f"the migration broke {len(problems)} foreign key(s), "
                                         f"e.g. {tuple(problems[0])}; rolled back")
        finally:
            sqlite_engine.dispose()
        return

    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            got = connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                     {"key": MIGRATION_LOCK_KEY}).scalar()
            if not got:
                log.info("another process is migrating this database; waiting for it")
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield connection


def migration_engine_for(url: str | URL) -> Engine:
    """The engine `aniface` uses for `url` (for the alembic CLI path of migrations/env.py)."""
    return make_engine(url if isinstance(url, str) else url.render_as_string(hide_password=False))


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_migration_engine(url: URL) -> Engine:
    engine = create_engine(url, poolclass=NullPool,
                           connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see the module doc)
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        use_write_ahead_log(dbapi_connection, SQLITE_BUSY_TIMEOUT_S)
        dbapi_connection.execute("PRAGMA synchronous=FULL")

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:  # noqa: ANN001
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
