"""`aniface db upgrade|downgrade|current`: the database's schema revision, and moving it.

The bot upgrades its database itself when it opens it; these are for operators: upgrading before a
deployment, checking where a database stands, going back after a bad release.
"""

from __future__ import annotations

import argparse
import re
import sys

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE


def register(commands: argparse._SubParsersAction) -> None:
    # --database-url is accepted before or after the action: `aniface db --database-url U current` and
    # `aniface db current --database-url U` (SUPPRESS keeps the second from resetting the first).
    url_help = ("the database (default: the settings' one: DATABASE_URL or database_url in the --config file, "
                "else the SQLite file in the data directory)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS, help=url_help)

    parser = commands.add_parser(
        "db", help="show or change the database's schema revision",
        description="Show or change the database's schema revision (Alembic migrations shipped with aniface). "
                    "The bot upgrades its database on start; these are for operators.")
    parser.add_argument("--database-url", metavar="URL", default=None, help=url_help)
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)

    upgrade = actions.add_parser("upgrade", parents=[common], help="upgrade the schema (to the newest by default)",
                                 description="Upgrade the schema to REV (default: head, the newest).")
    upgrade.add_argument("--revision", metavar="REV", default="head", help="target revision (default: head)")

    downgrade = actions.add_parser("downgrade", parents=[common], help="take the schema back to a revision",
                                   description="Take the schema back to REV; 'base' drops every table, and "
                                               "with them all the data.")
    downgrade.add_argument("revision", metavar="REV", help="target revision, e.g. 0001, -1 or base")

    actions.add_parser("current", parents=[common], help="print the database's revision",
                       description="Print the database's schema revision and the newest one aniface knows.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    from bot.storage import migrate
    from bot.storage.engine import make_engine

    raw_url = args.database_url or args.settings.database_url  # the database `aniface serve` uses
    try:
        engine = make_engine(raw_url)
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        return _fail(f"not a usable database URL: {_redact(raw_url)} ({_first_line(error)}); expected e.g. "
                     "sqlite:///path/to/aniface.sqlite3 or postgresql://user:password@host/dbname", EXIT_USAGE)
    except ImportError as error:  # a known dialect whose driver is not installed
        return _fail(f"cannot use {_redact(raw_url)}: {error}", EXIT_USAGE)

    shown = engine.url.render_as_string(hide_password=True)
    print(f"database: {shown}")
    try:
        head, known = migrate.head_revision(), migrate.known_revisions()
        before = migrate.current_revision(engine)
        if args.db_action == "current":
            print(f"revision: {_describe(before, head, known)}")
            if before is None or (before != head and before in known):
                print("run `aniface db upgrade` to bring it to the newest schema")
            return EXIT_OK
        print(f"before:   {_describe(before, head, known)}")
        if args.db_action == "upgrade":
            migrate.upgrade(engine, args.revision)
        else:
            migrate.downgrade(engine, args.revision)
        after = migrate.current_revision(engine)
        print(f"after:    {_describe(after, head, known)}" + ("  (nothing to do)" if after == before else ""))
        return EXIT_OK
    except CommandError as error:  # unknown revision, a target in the wrong direction, ...
        return _fail(f"{shown}: {error}", EXIT_USAGE)
    except DBAPIError as error:
        what = "cannot connect to" if error.connection_invalidated or _is_connect_error(error) else "failed on"
        return _fail(f"{what} {shown}: {_first_line(error.orig or error)}", EXIT_FAILED)
    except (SQLAlchemyError, migrate.MigrationError, OSError) as error:
        return _fail(f"{shown}: {_first_line(error)}", EXIT_FAILED)
    finally:
        engine.dispose()


def _describe(revision: str | None, head: str | None, known: set[str]) -> str:
    if revision is None:
        return "none (empty database, or never migrated)"
    if revision == head:
        return f"{revision} (head, the newest)"
    if revision not in known:
        return f"{revision} (unknown to this aniface, whose newest is {head}: migrated by a newer version?)"
    return f"{revision} (newest is {head})"


def _is_connect_error(error) -> bool:  # noqa: ANN001
    text = str(error.orig or error).lower()
    return any(word in text for word in ("connect", "unable to open database file", "authentication",
                                         "does not exist", "could not translate host name"))


def _first_line(error: BaseException | object) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def _redact(url: str) -> str:
    """A URL we could not parse, with anything that looks like a password hidden."""
    return _PASSWORD.sub(r"\1***@", url)


def _fail(message: str, code: int) -> int:
    print(f"aniface: {message}", file=sys.stderr)
    return code
