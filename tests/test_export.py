"""`bot.export` and `aniface export`: majority labels, what is left out, safe names, no raw ids, the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import unicodedata
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image
from sqlalchemy import select

from bot.export import (MANIFEST_COLUMNS, MAX_FOLDER_BYTES, ExportError, check_entry_name, csv_safe,
                        export_dataset, safe_folder_name)
from bot.privacy import Hasher
from bot.storage.models import Character, Face, Prediction, Vote
from recognizer.labels import clean_name, label_key

# `database` (tests/storage_fixtures.py, via conftest): every test runs on SQLite and on PostgreSQL.


HASHER = Hasher(b"test-export-secret")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
GROUP_CHAT = "-1009876543210"           # raw platform ids: never in an archive
USERS = [str(400_000_001 + n) for n in range(8)]
_serial = itertools.count(1)


# --- helpers ----------------------------------------------------------------------------------------

def png_bytes(seed: int, size: int = 12) -> bytes:
    """A small real PNG, different for every seed."""
    image = Image.new("RGB", (size, size))
    image.putdata([((seed * 37 + i) % 256, (seed * 11 + i * 3) % 256, (seed * 5) % 256) for i in range(size * size)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def add_character(session, name: str, key: str | None = None) -> Character:
    character = Character(name=name, key=key or label_key(name) or f"k{next(_serial)}", source="user")
    session.add(character)
    session.flush()
    return character


def add_face(session, *, crop: bytes | None = None, chat_id: str = GROUP_CHAT, platform: str = "telegram",
             predicted: str | None = None, candidates: list | None = None, crop_sha256: str | None = None) -> Face:
    n = next(_serial)
    crop = png_bytes(n) if crop is None else crop
    prediction = Prediction(platform=platform, chat_id=chat_id, message_id=str(9_100_000_000 + n),
                            sender_hash=HASHER(platform, USERS[0]), image_sha256=hashlib.sha256(b"img%d" % n).hexdigest(),
                            width=640, height=480, model_version="test-model-1", model_revision="c0ffee" * 6 + "c0ff",
                            created_at=NOW - timedelta(days=3))
    face = Face(number=1, x=1, y=2, w=30, h=30, detection_score=0.9, crop_png=crop,
                crop_sha256=crop_sha256 or hashlib.sha256(crop).hexdigest(),
                candidates=candidates if candidates is not None else (
                    [{"name": predicted, "probability": 0.73}, {"name": "Somebody Else", "probability": 0.1}]
                    if predicted else []),
                predicted_name=predicted)
    prediction.faces.append(face)
    session.add(prediction)
    session.flush()
    return face


def vote(session, face: Face, user: int, verdict: str, character: Character | None = None,
         at: datetime = NOW, platform: str = "telegram") -> Vote:
    row = Vote(face_id=face.id, platform=platform, user_hash=HASHER(platform, USERS[user]), verdict=verdict,
               character_id=character.id if character is not None else None, via="command",
               created_at=at, updated_at=at)
    session.add(row)
    session.flush()
    return row


def export_zip(database, **options):
    out = io.BytesIO()
    summary = export_dataset(database, out, hasher=HASHER, **options)
    return summary, out.getvalue()


def read_manifest(data: bytes) -> list[dict]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read("manifest.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def png_entries(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sorted(name for name in archive.namelist() if name != "manifest.csv")


# --- labels by majority -----------------------------------------------------------------------------

def test_majority_wins_and_votes_are_counted(database):
    with database.transaction() as session:
        chino, rize = add_character(session, "Chino Kafu"), add_character(session, "Rize Tedeza")
        face = add_face(session, predicted="Rize Tedeza")
        vote(session, face, 0, "is", chino)
        vote(session, face, 1, "is", chino)
        vote(session, face, 2, "is", rize)
        vote(session, face, 3, "not")
        face_id, crop_sha = face.id, face.crop_sha256

    summary, data = export_zip(database)
    assert summary.faces_exported == 1 and summary.files_written == 1
    assert summary.characters == {"Chino Kafu": 1}
    assert summary.ties_left_out == summary.unnamed == summary.below_min_votes == 0
    assert png_entries(data) == [f"Chino Kafu/{crop_sha}.png"]
    [row] = read_manifest(data)
    assert row["face_id"] == str(face_id) and row["label"] == "Chino Kafu" and row["label_key"] == "chino kafu"
    assert (row["votes_for"], row["votes_against"]) == ("2", "2")
    assert (row["model_guess"], row["model_probability"], row["model_agrees"]) == ("Rize Tedeza", "0.730000", "no")
    assert row["model_version"] == "test-model-1"
    assert row["model_revision"] == "c0ffee" * 6 + "c0ff"  # the shared model's commit (issue 18)
    assert row["last_vote_at"] == "2024-06-01T12:00:00Z"


def test_a_tie_for_first_place_is_left_out_and_counted(database):
    with database.transaction() as session:
        chino, rize, syaro = (add_character(session, n) for n in ("Chino Kafu", "Rize Tedeza", "Syaro Kirima"))
        tied = add_face(session)
        vote(session, tied, 0, "is", chino)
        vote(session, tied, 1, "is", rize)
        vote(session, tied, 2, "not")
        clear = add_face(session)
        vote(session, clear, 0, "is", syaro)

    summary, data = export_zip(database)
    assert summary.ties_left_out == 1
    assert summary.characters == {"Syaro Kirima": 1}
    assert [row["label"] for row in read_manifest(data)] == ["Syaro Kirima"]
    assert "1 left out: votes tied between names" in summary.describe()


def test_is_against_not_on_the_models_guess_is_settled_by_majority(database):
    with database.transaction() as session:
        chino = add_character(session, "Chino Kafu")
        outvoted = add_face(session, predicted="Chino Kafu")
        vote(session, outvoted, 0, "is", chino)
        vote(session, outvoted, 1, "not")
        vote(session, outvoted, 2, "not")
        tied = add_face(session, predicted="Chino Kafu")
        vote(session, tied, 0, "is", chino)
        vote(session, tied, 1, "not")
        confirmed = add_face(session, predicted="Chino Kafu")
        vote(session, confirmed, 0, "is", chino)
        vote(session, confirmed, 1, "is", chino)
        vote(session, confirmed, 2, "not")
        confirmed_id = confirmed.id

    summary, data = export_zip(database)
    assert (summary.outvoted, summary.ties_left_out, summary.faces_exported) == (1, 1, 1)
    [row] = read_manifest(data)
    assert row["face_id"] == str(confirmed_id) and row["model_agrees"] == "yes"
    assert (row["votes_for"], row["votes_against"]) == ("2", "1")


def test_min_votes(database):
    with database.transaction() as session:
        chino = add_character(session, "Chino Kafu")
        weak = add_face(session)
        vote(session, weak, 0, "is", chino)
        strong = add_face(session)
        vote(session, strong, 0, "is", chino)
        vote(session, strong, 1, "is", chino)
        strong_id = strong.id

    summary, data = export_zip(database, min_votes=2)
    assert summary.faces_exported == 1 and summary.below_min_votes == 1
    assert [row["face_id"] for row in read_manifest(data)] == [str(strong_id)]
    assert export_zip(database, min_votes=1)[0].faces_exported == 2
    with pytest.raises(ValueError):
        export_dataset(database, io.BytesIO(), hasher=HASHER, min_votes=0)


def test_since_keeps_faces_whose_latest_vote_is_recent(database):
    with database.transaction() as session:
        chino, rize = add_character(session, "Chino Kafu"), add_character(session, "Rize Tedeza")
        old = add_face(session)
        vote(session, old, 0, "is", chino, at=NOW - timedelta(days=30))
        revived = add_face(session)                       # an old vote, and a new one on the same face
        vote(session, revived, 0, "is", rize, at=NOW - timedelta(days=30))
        vote(session, revived, 1, "is", rize, at=NOW)
        recent = add_face(session)
        vote(session, recent, 0, "is", chino, at=NOW - timedelta(hours=1))
        expected = {str(revived.id), str(recent.id)}

    summary, data = export_zip(database, since=NOW - timedelta(days=1))
    rows = read_manifest(data)
    assert {row["face_id"] for row in rows} == expected
    revived_row = next(row for row in rows if row["label"] == "Rize Tedeza")
    assert revived_row["votes_for"] == "2"                # the label still counts every vote on the face
    # a naive `since` is UTC
    naive = (NOW - timedelta(days=1)).replace(tzinfo=None)
    assert export_zip(database, since=naive)[0].faces_exported == 2
    assert export_zip(database, since=NOW + timedelta(seconds=1))[0].faces_exported == 0
    assert export_zip(database)[0].faces_exported == 3


def test_a_person_changing_their_mind_counts_once(database):
    with database.transaction() as session:
        chino, rize = add_character(session, "Chino Kafu"), add_character(session, "Rize Tedeza")
        face = add_face(session)
        changed = vote(session, face, 0, "is", chino, at=NOW - timedelta(days=2))
        vote(session, face, 1, "is", rize, at=NOW - timedelta(days=2))
        face_id, vote_id = face.id, changed.id
    with database.transaction() as session:                  # same person, same face: the row is replaced
        row = session.get(Vote, vote_id)
        row.character_id, row.updated_at = rize.id, NOW
    with database.transaction() as session:
        assert len(session.scalars(select(Vote).where(Vote.face_id == face_id)).all()) == 2

    summary, data = export_zip(database)
    [row] = read_manifest(data)
    assert (row["label"], row["votes_for"], row["votes_against"]) == ("Rize Tedeza", "2", "0")
    assert row["last_vote_at"] == "2024-06-01T12:00:00Z"
    assert summary.ties_left_out == 0


def test_faces_with_only_not_votes_are_unnamed(database):
    with database.transaction() as session:
        face = add_face(session, predicted="Chino Kafu")
        vote(session, face, 0, "not")
        vote(session, face, 1, "not")

    summary, data = export_zip(database)
    assert summary.unnamed == 1 and summary.faces_exported == 0
    assert png_entries(data) == [] and read_manifest(data) == []


def test_one_chats_export(database):
    with database.transaction() as session:
        chino = add_character(session, "Chino Kafu")
        mine = add_face(session, chat_id="-100111")
        theirs = add_face(session, chat_id="-100222")
        vote(session, mine, 0, "is", chino)
        vote(session, theirs, 0, "is", chino)
        mine_id = mine.id

    summary, data = export_zip(database, chat=("telegram", "-100111"))
    [row] = read_manifest(data)
    assert row["face_id"] == str(mine_id) and row["chat"] == HASHER("telegram", "-100111")


# --- the archive ------------------------------------------------------------------------------------

def test_manifest_rows_and_no_raw_ids_anywhere(database):
    with database.transaction() as session:
        chino, rize = add_character(session, "Chino Kafu"), add_character(session, "Rize Tedeza")
        faces = [add_face(session, predicted="Chino Kafu") for _ in range(3)]
        for n, face in enumerate(faces):
            vote(session, face, n, "is", chino if n < 2 else rize)
            vote(session, face, n + 3, "is", chino if n < 2 else rize)
        message_ids = [face.prediction.message_id for face in faces]
        senders = [face.prediction.sender_hash for face in faces]
        expected = {str(face.id): face for face in faces}
        image_hashes = {str(face.id): face.prediction.image_sha256 for face in faces}

    summary, data = export_zip(database)
    rows = read_manifest(data)
    assert tuple(csv.reader(io.StringIO(zipfile.ZipFile(io.BytesIO(data)).read("manifest.csv")
                                        .decode("utf-8-sig"))))[0] == list(MANIFEST_COLUMNS)
    assert {row["face_id"] for row in rows} == set(expected)
    for row in rows:
        assert row["platform"] == "telegram" and row["chat"] == HASHER("telegram", GROUP_CHAT)
        assert row["image_sha256"] == image_hashes[row["face_id"]]
        assert row["path"] == f"{row['label']}/{expected[row['face_id']].crop_sha256}.png"
        assert row["predicted_at"] == "2024-05-29T12:00:00Z"
    assert summary.characters == {"Chino Kafu": 2, "Rize Tedeza": 1}

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        everything = data + b"".join(archive.read(name) for name in archive.namelist())
    forbidden = [GROUP_CHAT, *USERS, *message_ids, *senders, *(HASHER("telegram", user) for user in USERS)]
    for value in forbidden:
        assert value.encode() not in everything, value


def test_same_crop_twice_is_one_file_with_both_faces_noted(database):
    crop = png_bytes(999)
    with database.transaction() as session:
        chino = add_character(session, "Chino Kafu")
        first, second = add_face(session, crop=crop), add_face(session, crop=crop)
        vote(session, first, 0, "is", chino)
        vote(session, second, 1, "is", chino)
        first_id, second_id = first.id, second.id

    summary, data = export_zip(database)
    assert (summary.faces_exported, summary.files_written, summary.duplicates) == (2, 1, 1)
    rows = read_manifest(data)
    assert [row["face_id"] for row in rows] == [str(first_id), str(second_id)]
    assert rows[0]["path"] == rows[1]["path"] and rows[1]["duplicate_of"] == str(first_id)
    assert rows[0]["duplicate_of"] == ""


def test_a_damaged_crop_is_left_out(database):
    with database.transaction() as session:
        chino = add_character(session, "Chino Kafu")
        wrong_hash = add_face(session, crop_sha256="0" * 64)
        not_png = add_face(session, crop=b"GIF89a not a png")
        for face in (wrong_hash, not_png):
            vote(session, face, 0, "is", chino)

    summary, data = export_zip(database)
    assert summary.bad_crops == 2 and summary.faces_exported == 0 and png_entries(data) == []


def test_manifest_cells_cannot_be_formulas(database):
    names = ["=HYPERLINK(\"http://x\")", "+SUM(A1)", "-2+3", "@cmd", "Plain, \"quoted\" name"]
    with database.transaction() as session:
        for n, name in enumerate(names):
            face = add_face(session, predicted="=1+1")
            vote(session, face, 0, "is", add_character(session, name, key=f"formula {n}"))

    rows = read_manifest(export_zip(database)[1])
    labels = sorted(row["label"] for row in rows)
    assert labels == sorted(["'=HYPERLINK(\"http://x\")", "'+SUM(A1)", "'-2+3", "'@cmd", "Plain, \"quoted\" name"])
    assert all(row["model_guess"] == "'=1+1" for row in rows)
    assert sorted(row["path"].split("/")[0] for row in rows) == sorted(
        ["_=HYPERLINK(_http___x_)", "_+SUM(A1)", "_-2+3", "_@cmd", "Plain, _quoted_ name"])
    for row in rows:
        assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())
    assert csv_safe("\tx") == "'\tx" and csv_safe("\rx") == "'\rx" and csv_safe(5) == "5" and csv_safe(None) == ""


HOSTILE_NAMES = [
    "../../etc/passwd", "/abs/path", "C:\\evil", "'); DROP TABLE characters; --",
    clean_name(("アスナ" * 4000)[:64]),            # a 10,000-character name, cut to the column's limit
    "Chino\u202eugp.exe", "Ri\u200dze\u200b Tedeza", "Kokoa 🐰☕", "CON", "con.txt", "..", ".hidden",
    "\u200b\u200e", "...", "NUL", "a/b", "a\\b", "manifest.csv",
]


def test_hostile_names_make_safe_entries_that_extract_inside(database, tmp_path):
    with database.transaction() as session:
        for n, name in enumerate(HOSTILE_NAMES):
            face = add_face(session)
            vote(session, face, 0, "is", add_character(session, name, key=f"hostile {n}"))

    summary, data = export_zip(database)
    assert summary.faces_exported == len(HOSTILE_NAMES)
    names = png_entries(data)
    folders = {PurePosixPath(name).parts[0] for name in names}
    assert len(folders) == len(HOSTILE_NAMES)            # every character its own folder
    assert len({folder.casefold() for folder in folders}) == len(folders)
    for name in names + ["manifest.csv"]:
        assert check_entry_name(name) == name
        parts = PurePosixPath(name).parts
        assert len(parts) in (1, 2) and not name.startswith("/") and "\\" not in name and ":" not in name
        assert ".." not in parts and not any(part.startswith(".") for part in parts)
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name)
    assert "manifest.csv" not in folders

    target = tmp_path / "extract"
    target.mkdir()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
    root = target.resolve()
    extracted = [path for path in target.rglob("*") if path.is_file()]
    assert len(extracted) == len(HOSTILE_NAMES) + 1
    for path in extracted:
        assert root in path.resolve().parents
    assert not (tmp_path / "etc").exists() and not Path("/abs/path").exists()
    assert (target / "manifest.csv").is_file()

    from recognizer.training.dataset import load_datasets

    archive_path = tmp_path / "hostile.zip"
    archive_path.write_bytes(data)
    dataset = load_datasets([archive_path])                 # what `aniface train` makes of it
    assert not [reason for _, reason in dataset.skipped if "unsafe" in reason or "not a <character>" in reason]
    assert len(dataset.samples) + len(dataset.skipped) == len(HOSTILE_NAMES)


@pytest.mark.parametrize("name, expected", [
    ("Chino Kafu", "Chino Kafu"),
    ("../../etc/passwd", "_._etc_passwd"),
    ("/abs/path", "_abs_path"),
    ("C:\\evil", "C__evil"),
    ("CON", "_CON"), ("con.txt", "_con.txt"), ("Lpt1", "_Lpt1"), ("COM¹", "_COM1"), ("Conan", "Conan"),
    (".hidden", "hidden"), ("name. ", "name"), ("Ｆｕｌｌ／Ｗｉｄｔｈ", "Full_Width"),
    ("Chino\u202eugp.exe", "Chinougp.exe"), ("Ri\u200dze", "Rize"), ("a\tb\nc", "a b c"),
    ("Kokoa 🐰", "Kokoa 🐰"), ("<>:\"|?*", "_______"), ("-rf", "_-rf"), ("=1+1", "_=1+1"), ("@x", "_@x"),
    ("+", "_+"), ("a-b=c", "a-b=c"),
])
def test_safe_folder_name(name, expected):
    assert safe_folder_name(name) == expected


@pytest.mark.parametrize("name", ["", "..", ".", "...", " . ", "\u202e\u200b", "\ud800"])
def test_safe_folder_name_falls_back_when_nothing_is_left(name):
    folder = safe_folder_name(name)
    assert folder.startswith("character-") and len(folder) == len("character-") + 12
    assert safe_folder_name(name) == folder


@pytest.mark.parametrize("unit", ["a", "é", "アスナ", "🐰", "e\u0301"])
def test_safe_folder_name_caps_bytes_without_cutting_a_character(unit):
    folder = safe_folder_name(unit * 10_000)
    encoded = folder.encode("utf-8")
    assert 0 < len(encoded) <= MAX_FOLDER_BYTES
    assert encoded.decode("utf-8") == folder
    assert folder == unicodedata.normalize("NFC", folder)
    check_entry_name(f"{folder}/{'0' * 64}.png")


@pytest.mark.parametrize("entry", [
    "/etc/passwd", "../x.png", "a/../../x.png", "a\\b.png", "C:/x.png", "c:x.png", "", "a//b.png",
    "./a.png", ".hidden/x.png", "CON/x.png", "a\u202eb/x.png", "a /x.png",
])
def test_check_entry_name_refuses_unsafe_names(entry):
    with pytest.raises(ValueError):
        check_entry_name(entry)


def test_the_archive_reads_back_as_a_dataset(database, tmp_path):
    from recognizer.training.dataset import load_datasets

    with database.transaction() as session:
        chino, rize = add_character(session, "Chino Kafu"), add_character(session, "Rize Tedeza")
        odd = add_character(session, "Kokoa/Hoto ☕")
        for n in range(6):
            face = add_face(session)
            vote(session, face, 0, "is", (chino, rize, odd)[n % 3])

    out = tmp_path / "dataset.zip"
    summary = export_dataset(database, out, hasher=HASHER)
    assert summary.bytes_written == out.stat().st_size > 0
    rows = read_manifest(out.read_bytes())
    by_path = {row["path"]: row for row in rows}
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            if info.filename == "manifest.csv":
                continue
            folder, file_name = info.filename.split("/")
            data = archive.read(info)
            assert file_name == hashlib.sha256(data).hexdigest() + ".png"
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                assert image.format == "PNG"
            assert by_path[info.filename]["label"] == {"Chino Kafu": "Chino Kafu", "Rize Tedeza": "Rize Tedeza",
                                                       "Kokoa_Hoto ☕": "Kokoa/Hoto ☕"}[folder]

    dataset = load_datasets([out])                          # what `aniface train` reads
    assert dataset.skipped == []
    assert len(dataset.samples) == 6
    assert set(dataset.counts().values()) == {2}
    assert set(dataset.classes) == {label_key("Chino Kafu"), label_key("Rize Tedeza"), label_key("Kokoa/Hoto ☕")}


def test_empty_export_is_a_valid_archive_with_the_manifest_header(database, tmp_path):
    out = tmp_path / "empty.zip"
    summary = export_dataset(database, out, hasher=HASHER)
    assert summary.empty and summary.faces_exported == 0
    assert "Nothing to export yet" in summary.describe()
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["manifest.csv"]
        text = archive.read("manifest.csv").decode("utf-8-sig")
    assert text == ",".join(MANIFEST_COLUMNS) + "\r\n"


def test_writing_to_a_path_is_atomic(database, tmp_path):
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    with database.transaction() as session:
        face = add_face(session)
        vote(session, face, 0, "is", add_character(session, "Chino Kafu"))
    out = tmp_path / "out.zip"
    out.write_bytes(b"previous archive")

    def broken_hasher(platform, platform_id):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        export_dataset(database, out, hasher=broken_hasher)
    assert out.read_bytes() == b"previous archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip"]   # no temporary file left behind

    export_dataset(database, out, hasher=HASHER)
    assert zipfile.is_zipfile(out) and len(png_entries(out.read_bytes())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip"]

    with pytest.raises(ExportError, match="does not exist"):
        export_dataset(database, tmp_path / "missing" / "out.zip", hasher=HASHER)
    with pytest.raises(ExportError, match="folder"):
        export_dataset(database, tmp_path, hasher=HASHER)


def test_a_non_seekable_stream_gets_a_valid_archive(database):
    with database.transaction() as session:
        face = add_face(session)
        vote(session, face, 0, "is", add_character(session, "Chino Kafu"))

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.chunks = []

        def writable(self):
            return True

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

        def tell(self):
            raise OSError("not seekable")

    pipe = Pipe()
    summary = export_dataset(database, pipe, hasher=HASHER)
    data = b"".join(pipe.chunks)
    assert summary.bytes_written == len(data)
    assert len(png_entries(data)) == 1 and len(read_manifest(data)) == 1


# --- the command ------------------------------------------------------------------------------------

@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANIFACE_SECRET", "test-export-secret")
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_cli_exports_end_to_end(database, tmp_path, capsys, cli_env):
    from adapters.cli import main

    with database.transaction() as session:
        chino, rize = add_character(session, "Chino Kafu"), add_character(session, "Rize Tedeza")
        for n in range(3):
            face = add_face(session)
            vote(session, face, 0, "is", chino if n else rize, at=NOW - timedelta(days=10 * n))
            vote(session, face, 1, "is", chino if n else rize, at=NOW - timedelta(days=10 * n))
        tied = add_face(session)
        vote(session, tied, 0, "is", chino)
        vote(session, tied, 1, "is", rize)
    out = tmp_path / "export.zip"

    assert main(["export", "--out", str(out), "--database-url", database.url]) == 0
    printed = capsys.readouterr().out
    assert "3 faces of 2 characters exported" in printed
    assert "Chino Kafu: 2" in printed and "Rize Tedeza: 1" in printed
    assert "1 left out: votes tied between names" in printed
    rows = read_manifest(out.read_bytes())
    assert len(rows) == 3 and {row["chat"] for row in rows} == {Hasher(b"test-export-secret")("telegram", GROUP_CHAT)}

    assert main(["export", "--out", str(out), "--database-url", database.url, "--since", "2024-05-20",
                 "--min-votes", "2"]) == 0
    assert "2 faces of 2 characters exported" in capsys.readouterr().out
    assert main(["export", "--out", str(out), "--database-url", database.url,
                 "--since", "2024-06-01T12:00:01+00:00"]) == 0
    assert "Nothing to export yet" in capsys.readouterr().out
    assert zipfile.ZipFile(out).namelist() == ["manifest.csv"]
    assert main(["export", "--out", str(out), "--database-url", database.url, "--min-votes", "3"]) == 0
    assert "3 left out: fewer agreeing votes than the minimum" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--since", "yesterday"], "is not a date"),
    (["--since", "2024-13-01"], "is not a date"),
    (["--min-votes", "0"], "at least 1"),
    (["--out-dir"], None),
])
def test_cli_refuses_bad_arguments(tmp_path, capsys, cli_env, arguments, message):
    from adapters.cli import main

    url = f"sqlite:///{tmp_path / 'never-opened.sqlite3'}"     # refused before the database is opened
    out = tmp_path / "x.zip"
    if message is None:
        with pytest.raises(SystemExit) as exit_info:
            main(["export", "--out", str(out), *arguments])
        assert exit_info.value.code == 2
        return
    assert main(["export", "--out", str(out), "--database-url", url, *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "never-opened.sqlite3").exists()


def test_cli_refuses_unwritable_destinations_and_missing_databases(tmp_path, capsys, cli_env):
    from adapters.cli import main

    url = f"sqlite:///{tmp_path / 'never-opened.sqlite3'}"       # refused before the database is opened
    assert main(["export", "--out", str(tmp_path / "no" / "such" / "x.zip"), "--database-url", url]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path), "--database-url", url]) == 2
    assert "is a folder" in capsys.readouterr().err
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["export", "--out", str(locked / "x.zip"), "--database-url", url]) == 2
        assert "no permission" in capsys.readouterr().err
    missing = tmp_path / "nothing-here.sqlite3"
    assert main(["export", "--out", str(tmp_path / "x.zip"), "--database-url", f"sqlite:///{missing}"]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not missing.exists()
    assert main(["export", "--out", str(tmp_path / "x.zip"), "--database-url", "nosuchdriver://u:hunter2@host/db"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the database" in err and "hunter2" not in err
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "never-opened.sqlite3").exists()


def test_cli_since_parsing():
    from adapters.cli.export import parse_since

    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T12:30") == datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T12:30:00Z") == datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T21:30:00+09:00") == datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_since("01/05/2024")
