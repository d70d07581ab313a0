"""Storage: the Alembic migrations against the models, the `aniface db` command, transactions, and
hostile text, on SQLite and on PostgreSQL (see tests/storage_fixtures.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DataError, IntegrityError

from adapters.cli import main
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.engine import make_engine, use_write_ahead_log
from bot.storage.models import Alias, Base, Character, Face, Prediction

HEAD = "0008"
TABLES = set(Base.metadata.tables)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


# --- migrations ----------------------------------------------------------------------------------

def test_upgrade_from_empty_creates_exactly_the_models_schema(engine):
    assert migrate.head_revision() == HEAD
    assert migrate.current_revision(engine) is None
    assert _tables(engine) == set()

    migrate.upgrade(engine)

    assert migrate.current_revision(engine) == HEAD
    inspector = inspect(engine)
    assert _tables(engine) == TABLES
    for name, table in Base.metadata.tables.items():
        columns = {column["name"]: column for column in inspector.get_columns(name)}
        assert set(columns) == set(table.columns.keys()), name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, f"{name}.{column.name}"
        assert inspector.get_pk_constraint(name)["constrained_columns"] == [c.name for c in table.primary_key]
        indexes = {i["name"] for i in inspector.get_indexes(name) if not i.get("duplicates_constraint")}
        assert indexes == {index.name for index in table.indexes}, name
        assert ({fk["name"] for fk in inspector.get_foreign_keys(name)}
                == {fk.name for fk in table.foreign_key_constraints}), name
        expected_unique = {tuple(c.name for c in u.columns) for u in table.constraints
                           if type(u).__name__ == "UniqueConstraint"}
        assert {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)} == expected_unique, name
    # ... and Alembic's own comparison (types included) finds nothing to change
    assert _differences(engine) == []


def test_downgrade_to_base_removes_everything_and_upgrade_works_again(engine):
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert _tables(engine) == set()
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine, HEAD)
    assert _tables(engine) == TABLES
    assert migrate.current_revision(engine) == HEAD
    assert _differences(engine) == []


def test_upgrading_twice_is_a_no_op(database):
    with database.transaction() as session:
        session.add(Character(name="Chino Kafu", key="chino kafu", source="model"))
    database.upgrade()
    Database(database.url).dispose()  # opening it again upgrades again
    assert migrate.current_revision(database.engine) == HEAD
    with database.session() as session:
        assert session.scalars(select(Character.name)).all() == ["Chino Kafu"]


def test_a_failed_migration_leaves_nothing_behind(engine):
    """Each migration is one transaction: on SQLite too (migrate emits BEGIN IMMEDIATE itself)."""
    with pytest.raises(RuntimeError, match="after the DDL"):
        with migrate.migration_connection(engine) as connection:
            config = migrate.alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            assert set(inspect(connection).get_table_names()) >= TABLES
            raise RuntimeError("fails after the DDL")
    assert _tables(engine) == set()
    assert migrate.current_revision(engine) is None


def test_concurrent_upgrades_of_a_fresh_database_all_succeed(database_url):
    """Several processes starting at once: one creates the schema, the others wait and find it done."""
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[Exception] = []

    def start() -> None:
        engine = make_engine(database_url)  # each its own engine and connections, as separate processes
        try:
            barrier.wait(timeout=30)
            migrate.upgrade(engine)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "the upgrades deadlocked"
    assert errors == []
    engine = make_engine(database_url)
    try:
        assert migrate.current_revision(engine) == HEAD
        assert _tables(engine) == TABLES
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


def test_switching_to_wal_waits_for_a_connection_that_holds_the_file(tmp_path):
    """Several processes opening a fresh file switch it to WAL together; SQLite may answer "locked"
    to the losers at once, so the switch retries until its own timeout instead of failing the start."""
    path = tmp_path / "fresh.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    releaser.start()
    opener = sqlite3.connect(path, timeout=0.05, isolation_level=None)  # its busy timeout runs out first
    try:
        started = time.monotonic()
        use_write_ahead_log(opener, timeout_s=10)
        assert time.monotonic() - started >= 0.4
        assert opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        releaser.join()
        opener.close()
        holder.close()


def test_switching_to_wal_gives_up_at_its_timeout(tmp_path):
    path = tmp_path / "held.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            use_write_ahead_log(opener, timeout_s=0.3)
    finally:
        opener.close()
        holder.close()


def test_the_alembic_command_line_runs_env_py(database_url, tmp_path, capsys):
    """migrations/env.py without a connection handed in, as the `alembic` command runs it: online, and
    offline (--sql). In-process, to save two interpreter start-ups per backend."""
    import alembic.config

    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {migrate.migrations_directory()}\npath_separator = os\n")
    alembic_cli = ["-c", str(ini), "-x", f"url={database_url}"]

    alembic.config.main(argv=alembic_cli + ["upgrade", "head", "--sql"], prog="alembic")
    assert "CREATE TABLE characters" in capsys.readouterr().out
    engine = make_engine(database_url)
    try:
        assert migrate.current_revision(engine) is None  # offline touched nothing

        alembic.config.main(argv=alembic_cli + ["upgrade", "head"], prog="alembic")
        assert migrate.current_revision(engine) == HEAD
        assert _differences(engine) == []
        alembic.config.main(argv=alembic_cli + ["downgrade", "base"], prog="alembic")
        assert _tables(engine) == set()
    finally:
        engine.dispose()


# --- aniface db ----------------------------------------------------------------------------------

def test_cli_upgrade_current_downgrade(database_url, capsys):
    from sqlalchemy import make_url

    password = make_url(database_url).password

    assert main(["db", "--database-url", database_url, "current"]) == 0
    out = capsys.readouterr().out
    assert "revision: none" in out and "aniface db upgrade" in out

    assert main(["db", "upgrade", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert "before:   none" in out and f"after:    {HEAD} (head" in out
    if password:
        assert password not in out and "***" in out

    assert main(["db", "--database-url", database_url, "upgrade"]) == 0
    assert "nothing to do" in capsys.readouterr().out

    assert main(["db", "--database-url", database_url, "current"]) == 0
    assert f"revision: {HEAD} (head" in capsys.readouterr().out

    assert main(["db", "--database-url", database_url, "downgrade", "no-such-revision"]) == 2
    captured = capsys.readouterr()
    assert "no-such-revision" in captured.err and "Traceback" not in captured.err

    assert main(["db", "--database-url", database_url, "downgrade", "base"]) == 0
    out = capsys.readouterr().out
    assert f"before:   {HEAD}" in out and "after:    none" in out
    engine = make_engine(database_url)
    try:
        assert _tables(engine) == set()
    finally:
        engine.dispose()


def test_cli_uses_database_url_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    assert main(["db", "upgrade"]) == 0
    assert str(tmp_path / "env.sqlite3") in capsys.readouterr().out
    assert (tmp_path / "env.sqlite3").exists()


def test_cli_on_a_database_from_a_newer_aniface(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'newer.sqlite3'}"
    assert main(["db", "--database-url", url, "upgrade"]) == 0
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    capsys.readouterr()

    assert main(["db", "--database-url", url, "current"]) == 0
    assert "9999 (unknown to this aniface" in capsys.readouterr().out
    assert main(["db", "--database-url", url, "upgrade"]) == 2
    captured = capsys.readouterr()
    assert "9999" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://user:hunter2@host/db", "mysql+nosuchdriver://x@y/z"])
def test_cli_bad_url_is_a_usage_error(url, capsys):
    assert main(["db", "--database-url", url, "current"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("aniface: not a usable database URL")
    assert "Traceback" not in captured.err and "hunter2" not in captured.err + captured.out


@pytest.mark.parametrize("url", ["postgresql://aniface:hunter2@127.0.0.1:1/aniface",
                                 "sqlite:////nonexistent-directory/aniface.sqlite3"])
def test_cli_unreachable_database_is_a_clear_failure(url, capsys):
    assert main(["db", "--database-url", url, "upgrade"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("aniface: cannot connect to")
    assert "Traceback" not in captured.err and "hunter2" not in captured.err + captured.out


# --- transactions --------------------------------------------------------------------------------

def _prediction(**overrides) -> Prediction:
    values = dict(platform="telegram", chat_id="-100123", message_id="42", sender_hash="s" * 64,
                  image_sha256="a" * 64, width=640, height=360, model_version="test")
    values.update(overrides)
    return Prediction(**values)


def _face(number: int, **overrides) -> Face:
    values = dict(number=number, x=1, y=2, w=30, h=40, detection_score=0.9, crop_png=b"\x89PNG\x00\xff",
                  crop_sha256="c" * 64, candidates=[{"name": "Chino Kafu", "probability": 0.8}])
    values.update(overrides)
    return Face(**values)


def _count(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_transaction_rolls_back_on_an_exception(database):
    with pytest.raises(RuntimeError):
        with database.transaction() as session:
            prediction = _prediction()
            prediction.faces = [_face(1), _face(2)]
            session.add(prediction)
            session.flush()  # written to the database, not yet committed
            raise RuntimeError("the reply could not be sent")
    assert _count(database, Prediction) == 0 and _count(database, Face) == 0

    # a constraint violation half-way through: nothing of the prediction is kept either
    with pytest.raises(IntegrityError):
        with database.transaction() as session:
            prediction = _prediction()
            prediction.faces = [_face(1), _face(1)]  # (prediction_id, number) must be unique
            session.add(prediction)
    assert _count(database, Prediction) == 0 and _count(database, Face) == 0

    with database.transaction() as session:
        prediction = _prediction()
        prediction.faces = [_face(1), _face(2)]
        session.add(prediction)
    assert _count(database, Prediction) == 1 and _count(database, Face) == 2


# --- hostile text --------------------------------------------------------------------------------

HOSTILE = [
    "'); DROP TABLE characters; --",
    "Robert'); DELETE FROM aliases WHERE ('1'='1",
    '" OR ""="',
    "%s %(name)s :name ? $1 {0}",                     # every paramstyle's placeholder
    "\u202eakoT\u202c",                               # RIGHT-TO-LEFT OVERRIDE ... POP DIRECTIONAL FORMATTING
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew and Arabic
    "Ze\u200dro\u200cwidth\u200b\ufeff",              # ZWJ, ZWNJ, zero-width space, BOM
    "\U0001F469\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family",  # a ZWJ emoji sequence
    "\U0001F600" * 64,                                # 64 characters, 256 UTF-8 bytes: fits String(64)
    "e\u0301\u0301\u0301 Z\u0351\u0352\u0353algo",    # combining marks
    "\u30c1\u30ce \u9999\u98a8\u667a\u4e43",          # チノ 香風智乃
    "tab\tnewline\nreturn\r\\backslash",
    "\U0001D54F\U0001D560\U0001D55F",                 # astral-plane letters
]


def test_hostile_strings_round_trip_and_are_safe_as_parameters(database):
    """All in one database (a fresh PostgreSQL database per case would cost a second each)."""
    long_names = {}
    with database.transaction() as session:
        for i, value in enumerate(HOSTILE):
            assert len(value) <= 64
            character = Character(name=value, key=f"key{i}:{value}", source="user")
            character.aliases = [Alias(alias=value, key=f"alias{i}:{value}")]
            session.add(character)
            prediction = _prediction(chat_id=value, message_id=value, model_version=value)
            long_names[value] = value * (10_000 // len(value) + 1)  # over 10,000 characters, in JSON
            prediction.faces = [_face(1, predicted_name=value, candidates=[{"name": value, "probability": 0.5},
                                                                           {"name": long_names[value]}])]
            session.add(prediction)

    with database.session() as session:
        for i, value in enumerate(HOSTILE):
            character = session.scalars(select(Character).where(Character.name == value)).one()
            assert (character.name, character.key) == (value, f"key{i}:{value}")
            assert session.scalars(select(Alias.alias).where(Alias.key == f"alias{i}:{value}")).one() == value
            prediction = session.scalars(select(Prediction).where(Prediction.chat_id == value,
                                                                  Prediction.message_id == value)).one()
            assert prediction.model_version == value
            face = prediction.faces[0]
            assert face.predicted_name == value
            assert face.candidates == [{"name": value, "probability": 0.5}, {"name": long_names[value]}]
            # the same strings as a hand-written statement's parameters
            found = session.execute(text("SELECT name FROM characters WHERE name = :name AND key = :key"),
                                    {"name": value, "key": f"key{i}:{value}"}).scalars().all()
            assert found == [value], repr(value)
        assert session.scalar(select(func.count()).select_from(Character)) == len(HOSTILE)
    assert _tables(database.engine) == TABLES  # nothing was dropped


def test_text_limits_differ_per_backend(database):
    """What the application layer must know, since it validates text before storing it:

    - String(n) counts characters (code points), not bytes or graphemes: n emoji fit on both backends.
    - PostgreSQL refuses a value longer than n (DataError; the transaction is rolled back); SQLite
      stores it whole. So the caller must check or cut lengths itself.
    - PostgreSQL refuses NUL (U+0000) in text; SQLite stores it. The caller must strip NULs.
    """
    backend = database.engine.dialect.name
    with database.transaction() as session:
        session.add(Character(name="\U0001F600" * 64, key="emoji", source="user"))

    too_long = "x" * 65
    if backend == "postgresql":
        with pytest.raises(DataError, match="too long"):
            with database.transaction() as session:
                session.add(Character(name=too_long, key="too long", source="user"))
        with pytest.raises((DataError, ValueError)):
            with database.transaction() as session:
                session.add(Character(name="nul\x00byte", key="nul", source="user"))
        assert _count(database, Character) == 1
    else:
        with database.transaction() as session:
            session.add(Character(name=too_long, key="too long", source="user"))
            session.add(Character(name="nul\x00byte", key="nul", source="user"))
        with database.session() as session:
            names = set(session.scalars(select(Character.name)))
        assert {too_long, "nul\x00byte"} <= names


def test_timestamps_come_back_in_utc(database):
    """DateTime(timezone=True): PostgreSQL returns aware datetimes; SQLite returns naive ones (the
    offset is not stored), which are UTC because the models only write `utcnow()`."""
    with database.transaction() as session:
        session.add(Character(name="Cocoa", key="cocoa", source="user"))
    with database.session() as session:
        created = session.scalars(select(Character.created_at)).one()
    if created.tzinfo is None:
        assert database.engine.dialect.name == "sqlite"
        created = created.replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60


def test_replicas_adding_one_new_name_at_once_get_one_character(database):
    """Two replicas take `/wrong Somebody New` for the same new name at the same moment: both see no such
    character and add it. One row results, both corrections get it, no error, one "name" event."""
    from bot.storage.models import Character, GalleryEvent
    from bot.storage.repository import Repository

    store = Repository(database, None)
    start, ids, errors = threading.Barrier(4), [], []

    def add() -> None:
        start.wait()
        try:
            with store.votes() as votes:
                ids.append(votes.add_character("Somebody New", "somebody new", "user").id)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(ids) == 4 and len(set(ids)) == 1, (errors, ids)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Character).where(Character.key == "somebody new")) == 1
        assert session.scalar(select(func.count()).select_from(GalleryEvent).where(GalleryEvent.kind == "name")) == 1


def test_replicas_starting_together_on_an_empty_database_all_register_the_models_labels(database_url):
    """Each replica adds the model's labels at start; on a fresh database they all do it at once."""
    from bot.storage.repository import Repository

    setup = Database(database_url)
    migrate.upgrade(setup.engine)
    setup.dispose()
    labels = [f"character_{i}" for i in range(40)] + ["Hatsune Miku", "hatsune_miku"]  # one character, twice
    replicas = [Database(database_url) for _ in range(4)]
    start = threading.Barrier(len(replicas))
    results, failures = [], []

    def register(database: Database) -> None:
        start.wait()
        try:
            results.append(Repository(database, None).register_labels(labels))
        except Exception as error:  # noqa: BLE001 - the failure is what the test reports
            failures.append(error)

    threads = [threading.Thread(target=register, args=(database,)) for database in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert failures == [] and len(results) == len(replicas)
        assert all(sorted(k.name for k in known) == sorted(k.name for k in results[0]) for known in results)
        with replicas[0].transaction() as session:
            assert session.scalar(select(func.count()).select_from(Character)) == 41
    finally:
        for database in replicas:
            database.dispose()
