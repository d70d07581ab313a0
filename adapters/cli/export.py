"""`aniface export --out FILE.zip`: the stored corrections as a dataset `aniface train` reads.

The operator runs this command, so it exports every chat's corrections (a chat admin's export from the
chat is limited to that chat). People are never in the archive; chats only as salted hashes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, time, timezone
from pathlib import Path

from adapters.cli.exit_codes import EXIT_OK, EXIT_USAGE
from bot.terminal import printable


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export the corrections as a training dataset (zip)",
        description="Write every face that people named, settled by majority vote, as a zip of "
                    "<character>/<sha256>.png crops plus manifest.csv: the layout `aniface train` reads. "
                    "Ties are left out and counted. No user names or ids; chats only as salted hashes.")
    parser.add_argument("--out", metavar="FILE.zip", required=True, help="the archive to write (replaced if it exists)")
    parser.add_argument("--since", metavar="DATE",
                        help="only faces whose latest vote is at or after DATE (YYYY-MM-DD, or ISO 8601 with a "
                             "time; times without a zone are UTC)")
    parser.add_argument("--min-votes", metavar="N", type=int, default=1,
                        help="fewest agreeing votes a face needs (default: 1)")
    parser.add_argument("--database-url", metavar="URL", default=None,
                        help="database to read (default: the settings' one, as `aniface serve` uses: DATABASE_URL "
                             "or database_url in the --config file, else the SQLite file in the data folder)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(run=run)


def parse_since(text: str) -> datetime:
    """`2024-05-01` (midnight UTC) or an ISO 8601 time (`2024-05-01T12:00`, `...Z`, `...+09:00`) -> UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(0), timezone.utc)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date: use YYYY-MM-DD or an ISO 8601 time "
                         "such as 2024-05-01T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def run(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as error:
        return _fail(str(error))
    if args.min_votes < 1:
        return _fail("--min-votes must be at least 1")
    out = Path(args.out)
    problem = _unwritable(out)
    if problem:
        return _fail(problem)

    from sqlalchemy.exc import SQLAlchemyError

    from bot.export import ExportError, export_dataset
    from bot.privacy import Hasher, load_secret
    from bot.storage.db import Database
    from bot.storage.engine import normalise_url

    settings = args.settings  # the same database and secret as `aniface serve`
    url = normalise_url(args.database_url or settings.database_url)
    missing = _missing_sqlite_file(url)
    if missing:
        return _fail(f"no database at {missing}: nothing has been stored yet (or give --database-url)")
    try:
        hasher = Hasher(load_secret(settings.data_dir, settings.secret))
    except (OSError, ValueError) as error:
        return _fail(f"cannot read the hashing secret: {error}")
    try:
        database = Database(url)
    except Exception as error:  # noqa: BLE001 - a driver, a migration or the URL itself: say so, plainly
        logging.getLogger(__name__).debug("opening the database failed", exc_info=True)
        return _fail(f"cannot open the database {_hide_password(url)}: {_first_line(error)}")
    try:
        summary = export_dataset(database, out, since=since, min_votes=args.min_votes, hasher=hasher)
    except ExportError as error:
        return _fail(str(error))
    except SQLAlchemyError as error:
        return _fail(f"cannot read the database {database.display_url}: {_first_line(error)}")
    finally:
        database.dispose()

    if args.json:
        print(json.dumps({"out": str(out), **summary.as_dict()}, ensure_ascii=False))
    else:
        print(f"Wrote {printable(str(out))}")
        print(summary.describe())
    return EXIT_OK


def _unwritable(out: Path) -> str | None:
    import os

    if out.is_dir():
        return f"{printable(str(out))} is a folder; give the name of the .zip file to write"
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        return f"cannot write {printable(str(out))}: the folder {printable(str(folder))} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {printable(str(out))}: no permission to write in {printable(str(folder))}"
    if out.exists() and not os.access(out, os.W_OK):
        return f"cannot write {printable(str(out))}: the file is read-only"
    return None


def _missing_sqlite_file(url: str) -> str | None:
    from sqlalchemy import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a malformed URL is reported when it is opened
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    return None if Path(parsed.database).exists() else parsed.database


def _hide_password(url: str) -> str:
    from sqlalchemy import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(the given URL)"


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return f"{error.__class__.__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _fail(message: str) -> int:
    print(f"aniface export: {message}", file=sys.stderr)
    return EXIT_USAGE
