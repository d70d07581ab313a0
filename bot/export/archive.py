"""Writing the export: the zip of crops and its manifest, streamed, to a path (atomically) or a stream."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO

from sqlalchemy import select

from bot.export.names import MANIFEST_NAME, assign_folders, check_entry_name, clean_label, csv_safe
from bot.export.selection import BATCH_SIZE, as_utc, decide, in_batches
from bot.export.summary import ExportError, ExportSummary
from bot.privacy import Hasher
from bot.storage.db import Database
from bot.storage.models import Character, Face, Prediction
from recognizer.labels import label_key

MANIFEST_COLUMNS = (
    "face_id", "path", "label", "label_key", "votes_for", "votes_against", "model_guess", "model_probability",
    "model_agrees", "model_version", "model_revision", "last_vote_at", "predicted_at", "image_sha256", "platform", "chat",
    "duplicate_of",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _iso_utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return as_utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def _model_guess(predicted_name: str | None, candidates) -> tuple[str, str]:
    """(the model's guess, its probability) from a face's stored prediction; ('', '') when unknown."""
    if not predicted_name:
        return "", ""
    probability = ""
    if isinstance(candidates, str):
        try:
            candidates = json.loads(candidates)
        except ValueError:
            candidates = []
    if isinstance(candidates, list):
        wanted = label_key(predicted_name)
        for candidate in candidates:
            if isinstance(candidate, dict) and isinstance(candidate.get("name"), str) \
                    and label_key(candidate["name"]) == wanted:
                value = candidate.get("probability")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    probability = f"{float(value):.6f}"
                break
    return clean_label(predicted_name), probability


def export_dataset(database: Database, destination: BinaryIO | str | os.PathLike, *,
                   since: datetime | None = None, min_votes: int = 1, hasher: Hasher,
                   chat: tuple[str, str] | None = None) -> ExportSummary:
    """Write the corrected faces as a training archive to `destination` (a path or a writable binary file).

    `since`: only faces whose latest vote is at or after this moment (a naive time is UTC).
    `min_votes`: the fewest agreeing "is" votes a face needs. `hasher` turns chat ids into pseudonyms.
    `chat`: (platform, chat_id) to export only the faces of one chat (a chat admin's export).
    Raises ValueError for bad arguments and ExportError when the destination cannot be written.
    """
    if isinstance(min_votes, bool) or not isinstance(min_votes, int) or min_votes < 1:
        raise ValueError("min_votes must be a whole number of at least 1")
    if since is not None:
        since = as_utc(since)

    if isinstance(destination, (str, os.PathLike)):
        return _export_to_path(Path(destination), database, since, min_votes, hasher, chat)
    return _export_to_stream(destination, database, since, min_votes, hasher, chat)


def _export_to_path(path: Path, database, since, min_votes, hasher, chat) -> ExportSummary:
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give the name of the .zip file to write")
    if not directory.is_dir():
        raise ExportError(f"the folder {directory} does not exist")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as error:
        raise ExportError(f"cannot write in {directory}: {error.strerror or error}") from error
    try:
        with os.fdopen(descriptor, "wb") as handle:
            summary = _write_archive(handle, database, since, min_votes, hasher, chat)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError) and not isinstance(error, ExportError):
            raise ExportError(f"cannot write {path}: {error.strerror or error}") from error
        raise
    _fsync_directory(directory)
    summary.bytes_written = path.stat().st_size
    return summary


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _export_to_stream(stream: BinaryIO, database, since, min_votes, hasher, chat) -> ExportSummary:
    try:
        start = stream.tell()
        target: IO[bytes] = stream
    except (AttributeError, OSError, ValueError):
        start, target = 0, _CountingWriter(stream)
    summary = _write_archive(target, database, since, min_votes, hasher, chat)
    try:
        summary.bytes_written = target.tell() - start
    except (AttributeError, OSError, ValueError):
        pass
    return summary


class _CountingWriter(io.RawIOBase):
    """A non-seekable stream that counts what passes through (zipfile then writes data descriptors)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner, self._count = inner, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        written = self._inner.write(data)
        written = len(data) if written is None else written
        self._count += written
        return written

    def flush(self) -> None:
        self._inner.flush()

    def tell(self) -> int:
        return self._count


def _write_archive(handle: IO[bytes], database: Database, since, min_votes, hasher, chat) -> ExportSummary:
    summary = ExportSummary()
    stamp = time.localtime()[:6]
    with database.session() as session, session.begin():
        if database.engine.dialect.name == "postgresql":
            # One snapshot for both passes: votes arriving meanwhile cannot make them disagree.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        decisions = decide(session, since, min_votes, chat, summary)
        character_ids = {decision.character_id for decision in decisions}
        characters = {c.id: c for c in in_batches(
            session, lambda ids: select(Character).where(Character.id.in_(ids)), sorted(character_ids))}
        folders = assign_folders(characters)

        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b") as manifest_file, \
                zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
            manifest_text = io.TextIOWrapper(manifest_file, encoding="utf-8-sig", newline="")
            writer = csv.writer(manifest_text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(MANIFEST_COLUMNS)
            written: dict[tuple[str, str], int] = {}   # (folder, sha256) -> first face id
            chats: dict[tuple[str, str], str] = {}

            by_face = {decision.face_id: decision for decision in decisions}
            face_ids = sorted(by_face)
            for start in range(0, len(face_ids), BATCH_SIZE):
                batch = face_ids[start:start + BATCH_SIZE]
                rows = session.execute(
                    select(Face.id, Face.crop_png, Face.crop_sha256, Face.candidates, Face.predicted_name,
                           Prediction.platform, Prediction.chat_id, Prediction.image_sha256,
                           Prediction.model_version, Prediction.model_revision, Prediction.created_at)
                    .join(Prediction, Face.prediction_id == Prediction.id)
                    .where(Face.id.in_(batch)).order_by(Face.id))
                for row in rows:
                    decision = by_face[row.id]
                    data = bytes(row.crop_png or b"")
                    digest = hashlib.sha256(data).hexdigest()
                    if not data.startswith(PNG_SIGNATURE) or digest != (row.crop_sha256 or "").lower():
                        summary.bad_crops += 1
                        continue
                    character = characters[decision.character_id]
                    folder = folders[decision.character_id]
                    entry = check_entry_name(f"{folder}/{digest}.png")
                    first = written.get((folder, digest))
                    if first is None:
                        info = zipfile.ZipInfo(entry, date_time=stamp)
                        info.compress_type = zipfile.ZIP_STORED     # PNG is compressed already
                        info.external_attr = 0o100644 << 16         # a regular file, never a link
                        archive.writestr(info, data)
                        written[(folder, digest)] = row.id
                        summary.files_written += 1
                    else:
                        summary.duplicates += 1
                    chat_key = (row.platform, row.chat_id)
                    if chat_key not in chats:
                        chats[chat_key] = hasher(row.platform, row.chat_id)
                    guess, probability = _model_guess(row.predicted_name, row.candidates)
                    label = clean_label(character.name)
                    agrees = "" if not guess else ("yes" if label_key(guess) == character.key else "no")
                    writer.writerow([csv_safe(cell) for cell in (
                        row.id, entry, label, character.key, decision.votes_for, decision.votes_against,
                        guess, probability, agrees, row.model_version or "", row.model_revision or "",
                        _iso_utc(decision.last_vote_at),
                        _iso_utc(row.created_at), row.image_sha256, row.platform, chats[chat_key],
                        first if first is not None else "",
                    )])
                    summary.faces_exported += 1
                    shown = label or folder
                    summary.characters[shown] = summary.characters.get(shown, 0) + 1

            manifest_text.flush()
            size = manifest_file.tell()
            manifest_file.seek(0)
            info = zipfile.ZipInfo(check_entry_name(MANIFEST_NAME), date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.file_size = size
            with archive.open(info, "w") as member:
                while chunk := manifest_file.read(1024 * 1024):
                    member.write(chunk)
            manifest_text.detach()
    return summary
