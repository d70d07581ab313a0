"""Alembic's entry: runs the revisions in versions/ against aniface's database.

Two ways in:
- Programmatically (`bot.storage.migrate`, `aniface db ...`, opening a `Database`): the caller puts a
  connection, already inside a transaction holding the migration lock, in
  `config.attributes["connection"]`; it is used as is and the caller commits.
- The alembic command line (`alembic -c some.ini upgrade head`, `alembic revision --autogenerate`): the
  URL is `-x url=...`, else `sqlalchemy.url` from the ini file, else aniface's default
  (`$DATABASE_URL`, else the SQLite file in the user's data directory); the same lock is taken.
  `--sql` (offline) prints the SQL instead.

SQLite cannot ALTER most things, so revisions are rendered (and run) in batch mode there.
"""

from __future__ import annotations

from alembic import context

from bot.storage.engine import normalise_url
from bot.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configured_url() -> str:
    """The database the bot's settings name (environment, ANIFACE_CONFIG), as `aniface db` uses."""
    from bot.config import load_settings

    return load_settings().database_url


def _url() -> str:
    url = (context.get_x_argument(as_dictionary=True).get("url")
           or config.get_main_option("sqlalchemy.url")
           or _configured_url())
    return normalise_url(url)


def _configure_and_run(**options) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, **options)
    with context.begin_transaction():  # a no-op when the caller's connection is already in a transaction
        context.run_migrations()


def run_migrations_offline() -> None:
    url = _url()
    _configure_and_run(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                       render_as_batch=url.startswith("sqlite"))


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
        return

    from bot.storage.migrate import migration_connection, migration_engine_for

    engine = migration_engine_for(_url())
    try:
        with migration_connection(engine) as connection:
            _configure_and_run(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
