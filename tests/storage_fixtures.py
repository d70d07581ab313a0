"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from $ANIFACE_TEST_POSTGRES_URL (a role that may create databases; `bash
scripts/test.sh` starts a private server and sets it). Each test gets a fresh database
`aniface_test_<random>` on that server, dropped afterwards. Without the variable the PostgreSQL cases
are skipped, except under CI (CI=true), where they fail: a broken PostgreSQL setup must not pass
silently.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import Iterator

import pytest

from tests.unavailable import skip_or_fail

POSTGRES_URL_VARIABLE = "ANIFACE_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")

__all__ = ["BACKENDS", "POSTGRES_URL_VARIABLE", "database", "database_url", "fresh_postgres_database",
           "postgres_admin_url"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The URL of the test PostgreSQL server (its `postgres` database), or skip (fail under CI)."""
    from bot.storage.engine import normalise_url

    url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if not url:
        message = (f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (a role that may create databases); "
                   "`bash scripts/test.sh` starts a server and sets it")
        skip_or_fail(message)
    return normalise_url(url)


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`; yields its URL and drops it afterwards."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    name = f"aniface_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            try:  # template1 is the quick one to copy; template0 where template1 is not UTF-8
                connection.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8'")
            except DBAPIError:
                connection.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            _drop(admin, name)
    finally:
        admin.dispose()


def _drop(admin, name: str, attempts: int = 20) -> None:  # noqa: ANN001 - a SQLAlchemy engine
    """DROP DATABASE ... WITH (FORCE): a connection a failed test left open must not keep it alive.

    FORCE may not end a server process of another role (an autovacuum worker that just started on the
    new database answers "must be a member of the role whose process is being terminated"): such a
    process finishes by itself within moments, so the drop is tried again."""
    import time

    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except DBAPIError as error:
            if "InsufficientPrivilege" not in type(error.orig).__name__ or attempt == attempts - 1:
                raise
            time.sleep(0.25)


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database (no tables): an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aniface.sqlite3'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    with fresh_postgres_database(admin_url) as url:
        yield url


@pytest.fixture
def database(database_url):
    """A `bot.storage.db.Database` on `database_url`, upgraded to the newest schema."""
    from bot.storage.db import Database

    db = Database(database_url)
    try:
        yield db
    finally:
        db.dispose()
