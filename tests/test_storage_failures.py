"""Storage that cannot be written (issue 15, defect 9): a full disk, a read-only database.

Corrections get a clear "I can't save corrections right now" (the web: 503 storage_unavailable), pictures
are still answered, /readyz says what is wrong while /healthz stays liveness, and `aniface serve` refuses
a database it cannot write, with exit status 2.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from adapters.cli import main
from bot import wording
from bot.i18n import words
from bot.messages import AckReason, IncomingImage, Person, ReplyKind
from tests import core_factory
from tests.test_web_api import (SINGLE, build_core, client, core, correct, documented, identify,  # noqa: F401
                                open_client, scene, web_backbone)

ALICE = Person("telegram", "1001", in_private=True)


@contextmanager
def disk_full(core):
    """Every commit of a transaction that wrote fails, as SQLite's do with a full disk (reads go on)."""
    sessions = core.database._sessions

    def wrote(session, _context):  # noqa: ANN001
        session.info["wrote"] = True

    def fail(session):  # noqa: ANN001
        if session.new or session.dirty or session.deleted or session.info.pop("wrote", False):
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))

    event.listen(sessions, "after_flush", wrote)
    event.listen(sessions, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(sessions, "before_commit", fail)
        event.remove(sessions, "after_flush", wrote)


def read_only_url(tmp_path) -> str:
    return f"sqlite:///file:{tmp_path / 'web.sqlite3'}?mode=ro&uri=true"


async def test_a_correction_on_a_full_disk_is_a_clear_ack_and_a_503_on_the_web(client, core, scene):  # noqa: F811
    _, body = await identify(client, scene)
    face_id = body["faces"][0]["id"]
    with disk_full(core):
        assert wording.cant_save(words()) == "I can't save corrections right now; please try again later."
        answer = await correct(client, {"face_id": face_id, "name": "Emilia"}, expect=503)
        assert answer["error"] == {"code": "storage_unavailable", "message": wording.cant_save(words())}
        answer = await correct(client, {"face_id": face_id, "candidate": 1}, expect=503)
        assert answer["error"]["code"] == "storage_unavailable"
    answer = await correct(client, {"face_id": face_id, "name": "Emilia"})
    assert answer["ok"]


async def test_chat_corrections_on_a_full_disk_say_so(tmp_path, web_backbone, tiny_model, shared_data):  # noqa: F811
    core = build_core(tmp_path, web_backbone, tiny_model.path)
    await core.start()
    try:
        data = (shared_data / "scenes" / SINGLE).read_bytes()
        reply = await core.identify(IncomingImage("telegram", "chat", "m1", ALICE, data, asked=True))
        await core.reply_sent(reply.prediction_id, "telegram", "chat", "b1")
        with disk_full(core):
            ack = await core.wrong_command(ALICE, "chat", "b1", "Emilia")
            assert (ack.ok, ack.reason, ack.text) == (False, AckReason.STORAGE_UNAVAILABLE, wording.cant_save(words()))
            ack = await core.react(ALICE, "chat", "b1", "\U0001F44D")
            assert ack.reason == AckReason.STORAGE_UNAVAILABLE
            ack = await core.press(ALICE, "chat", reply.faces[0].face_id, 1)
            assert ack.reason == AckReason.STORAGE_UNAVAILABLE
            ack = await core.update_settings(ALICE, "chat", answer_mode="asked")
            assert ack.reason == AckReason.STORAGE_UNAVAILABLE
            # a picture whose prediction cannot be stored is still answered, without buttons
            unstored = await core.identify(IncomingImage("telegram", "chat", "m2", ALICE, data, asked=True))
            assert unstored.kind == ReplyKind.FACES and unstored.prediction_id is None and unstored.faces == ()
            assert wording.not_stored_note(words()) in unstored.text and "/wrong" not in unstored.text
        ack = await core.wrong_command(ALICE, "chat", "b1", "Emilia")
        assert ack.ok
    finally:
        await core.close()


async def test_a_picture_on_a_full_disk_is_still_answered_on_the_web(client, core, scene):  # noqa: F811
    with disk_full(core):
        response, body = await identify(client, scene)
    assert body["kind"] == "faces" and body["prediction_id"] is None and body["faces"] == []
    assert wording.not_stored_note(words()) in body["message"]


async def test_readyz_checks_writability_and_healthz_stays_liveness(tmp_path, web_backbone, tiny_model):  # noqa: F811
    writable = build_core(tmp_path, web_backbone, tiny_model.path)
    await writable.start()
    client = await open_client(writable)
    try:
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 200 and body == {"status": "ready"}
        documented("GET", "/readyz", 200, body)
    finally:
        await client.close()
        await writable.close()

    read_only = core_factory.make_core(read_only_url(tmp_path), tmp_path,
                                       core_factory.tiny_recognizer(web_backbone, tiny_model.path),
                                       secret="web-test-secret")
    client = await open_client(read_only)
    try:
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503 and body["status"] == "unavailable", body
        assert "readonly" in body["reason"] or "read-only" in body["reason"], body
        documented("GET", "/readyz", 503, body)
        response = await client.get("/healthz")
        assert response.status == 200 and (await response.json())["status"] == "ok"
        # and every correction says so
        ack = await read_only.name_face(Person("web", "x"), 1, "Emilia")
        assert ack.reason in (AckReason.STORAGE_UNAVAILABLE, AckReason.NOT_AN_ANSWER)
        ack = await read_only.update_settings(ALICE, "chat", answer_mode="asked")
        assert ack.reason == AckReason.STORAGE_UNAVAILABLE and ack.text == wording.cant_save(words())
    finally:
        await client.close()
        await read_only.close()


def test_serve_refuses_a_database_it_cannot_write(tmp_path, capsys, monkeypatch, web_backbone, tiny_model):  # noqa: F811
    from tests.test_serve import clear_settings

    core = build_core(tmp_path, web_backbone, tiny_model.path)
    core.database.dispose()
    clear_settings(monkeypatch)
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANIFACE_SECRET", "web-test-secret")
    monkeypatch.setenv("DATABASE_URL", read_only_url(tmp_path))
    monkeypatch.setenv("ANIFACE_MODEL", str(tiny_model.path))
    monkeypatch.setattr("adapters.cli.runtime.build_recognizer",
                        lambda settings: core_factory.tiny_recognizer(web_backbone, tiny_model.path))
    assert main(["serve", "--port", "0"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert "cannot be written" in err and "readonly" in err, err


# --- PostgreSQL made read-only (issue 15, defect 9, the server's side) -----------------------------------

READ_ONLY_KINDS = {
    # the whole database in read-only mode, as an operator sets it (or a hot standby answers)
    "default_transaction_read_only": 'ALTER DATABASE "{name}" SET default_transaction_read_only = on',
    # a role that may only read: the owner gives up its own right to write every table
    "select_only": "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM CURRENT_USER",
}


@pytest.fixture(params=sorted(READ_ONLY_KINDS))
def read_only_postgres(request, postgres_admin_url):
    """The URL of a migrated PostgreSQL database that cannot be written any more, and what makes it so."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.pool import NullPool

    from bot.storage.db import Database
    from tests.storage_fixtures import fresh_postgres_database

    with fresh_postgres_database(postgres_admin_url) as url:
        Database(url).dispose()  # the schema is there: the server was writable once
        engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(READ_ONLY_KINDS[request.param].format(name=make_url(url).database))
        finally:
            engine.dispose()
        yield url, request.param


def test_serve_refuses_a_read_only_postgresql_database(read_only_postgres, tmp_path, capsys, monkeypatch,
                                                        web_backbone, tiny_model):  # noqa: F811
    from tests.test_serve import clear_settings

    url, kind = read_only_postgres
    clear_settings(monkeypatch)
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANIFACE_SECRET", "web-test-secret")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANIFACE_MODEL", str(tiny_model.path))
    monkeypatch.setattr("adapters.cli.runtime.build_recognizer",
                        lambda settings: core_factory.tiny_recognizer(web_backbone, tiny_model.path))
    assert main(["serve", "--port", "0"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "password" not in err.split("cannot be written")[0].lower()
    assert "cannot be written" in err, err
    assert ("read-only transaction" if kind == "default_transaction_read_only" else "permission denied") in err, err


async def test_readyz_reports_a_read_only_postgresql_database(read_only_postgres, tmp_path, web_backbone,
                                                              tiny_model):  # noqa: F811
    url, kind = read_only_postgres
    read_only = core_factory.make_core(url, tmp_path, core_factory.tiny_recognizer(web_backbone, tiny_model.path),
                                       secret="web-test-secret")
    client = await open_client(read_only)
    try:
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503 and body["status"] == "unavailable", body
        assert body["reason"].startswith("the database cannot be written: "), body
        response = await client.get("/healthz")
        assert response.status == 200
        ack = await read_only.update_settings(ALICE, "chat", answer_mode="asked")
        assert ack.reason == AckReason.STORAGE_UNAVAILABLE and ack.text == wording.cant_save(words())
    finally:
        await client.close()
        await read_only.close()
