"""The corrections as a training set: a zip that `aniface train` reads.

Layout: `<character>/<sha256>.png` for every labelled face crop, and `manifest.csv` at the root with
one row per exported face (face id, path, label, votes for and against, the model's own guess, when).
People appear nowhere: no user names, no user pseudonyms; a chat only as a salted hash of its id.

How a face gets its label:
- the label is the character with the most "is" votes on the face; a tie for first place is left out
  (and counted), and so is a face whose label is the model's own guess when at least as many people
  said "not" to it (a tie, or outvoted);
- votes_for = "is" votes for the label, votes_against = every other vote on the face;
- a face needs votes_for >= min_votes; a face with only "not" votes has no name (counted as unnamed);
- `since` keeps the faces whose latest vote was cast or changed at or after that time.

Names become folder names through `safe_folder_name` (normalised unicode, no separators, no `..`, no
reserved or invisible characters, bounded length), and every entry name is checked again before it is
written, so the archive cannot escape the folder it is extracted into.

The archive is streamed: votes are aggregated in SQL, crops are read in batches and written one at a
time; given a path, it is written to a temporary file beside it and moved into place when complete.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, BinaryIO, Iterator

from sqlalchemy import func, select

from bot.privacy import Hasher
from bot.storage.db import Database
from bot.storage.models import Character, Face, Prediction, Vote
from bot.terminal import printable
from bot.votes import settle_counts
from recognizer.labels import label_key

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "face_id", "path", "label", "label_key", "votes_for", "votes_against", "model_guess", "model_probability",
    "model_agrees", "model_version", "last_vote_at", "predicted_at", "image_sha256", "platform", "chat",
    "duplicate_of",
)
#: Longest folder name, in UTF-8 bytes (well under every file system's 255-byte component limit).
MAX_FOLDER_BYTES = 100
#: Faces whose crops are read per query.
BATCH_SIZE = 200

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_RESERVED_CHARACTERS = re.compile(r'[<>:"/\\|?*]')
_DOTS = re.compile(r"\.{2,}")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"COM{n}" for n in "0123456789¹²³"] + [f"LPT{n}" for n in "0123456789¹²³"])
#: Root names the export itself uses; a character folder may not take them.
_TAKEN_AT_ROOT = frozenset({MANIFEST_NAME.casefold()})
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """The export could not be written; the message says why, in words for the operator."""


@dataclass
class ExportSummary:
    """What an export holds and what it left out, and why."""

    faces_exported: int = 0                      # manifest rows: labelled faces written
    files_written: int = 0                       # PNG entries (a crop seen twice under one label is one file)
    characters: dict[str, int] = field(default_factory=dict)  # label -> faces exported
    ties_left_out: int = 0                       # no majority for one name
    outvoted: int = 0                            # the winning name is the model's guess, and more said "not"
    below_min_votes: int = 0                     # a majority, but fewer "is" votes than min_votes
    unnamed: int = 0                             # only "not" votes: wrong, but nobody said who it is
    duplicates: int = 0                          # faces whose crop was already in the archive under that label
    bad_crops: int = 0                           # stored crop is not a PNG or does not match its sha256
    bytes_written: int = 0

    @property
    def empty(self) -> bool:
        return self.faces_exported == 0

    def describe(self) -> str:
        """The summary in a few lines, for the operator or a chat admin."""
        lines = [f"{self.faces_exported} face{_s(self.faces_exported)} of {len(self.characters)} "
                 f"character{_s(len(self.characters))} exported ({self.files_written} image{_s(self.files_written)}, "
                 f"{self.bytes_written} bytes)."]
        if self.empty:
            lines.append("Nothing to export yet: no face has enough agreeing corrections. "
                         "The archive holds only the manifest header.")
        for name, count in sorted(self.characters.items(), key=lambda item: (-item[1], item[0].casefold())):
            lines.append(f"  {printable(name)}: {count}")
        left_out = [
            (self.ties_left_out, "left out: votes tied between names"),
            (self.outvoted, "left out: more people said it is not the model's guess than that it is"),
            (self.below_min_votes, "left out: fewer agreeing votes than the minimum"),
            (self.unnamed, "left out: marked wrong but never named"),
            (self.bad_crops, "left out: stored crop damaged"),
            (self.duplicates, "the same crop seen again under the same name (one image, several faces)"),
        ]
        lines.extend(f"{count} {what}" for count, what in left_out if count)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "faces_exported": self.faces_exported, "files_written": self.files_written,
            "characters": dict(self.characters), "ties_left_out": self.ties_left_out, "outvoted": self.outvoted,
            "below_min_votes": self.below_min_votes, "unnamed": self.unnamed, "duplicates": self.duplicates,
            "bad_crops": self.bad_crops, "bytes_written": self.bytes_written,
        }


@dataclass(frozen=True)
class _Decision:
    face_id: int
    character_id: int
    votes_for: int
    votes_against: int
    last_vote_at: datetime


# --- safe names ------------------------------------------------------------------------------------

def safe_folder_name(display_name: str, *, max_bytes: int = MAX_FOLDER_BYTES) -> str:
    """A folder name for a character that is safe on every file system and in every archive tool.

    NFKC-normalised; control, format (bidi, zero-width), surrogate, private-use and unassigned characters
    dropped; other whitespace made a plain space; path separators, reserved characters and `..` replaced;
    no leading or trailing dot or space; Windows device names (CON, NUL, COM1...) and a leading
    `= + - @` (a formula in a spreadsheet, an option on a command line) defused with `_`; at most
    `max_bytes` UTF-8 bytes, never cutting a character. A name with nothing left becomes
    `character-<hash>`.
    """
    text = unicodedata.normalize("NFKC", display_name or "")
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace() or category[0] == "Z":
            kept.append(" ")
        elif category not in _INVISIBLE_CATEGORIES:
            kept.append(ch)
    text = " ".join("".join(kept).split())
    text = _RESERVED_CHARACTERS.sub("_", text)
    text = _DOTS.sub(".", text)
    text = _truncate_utf8(text.strip(". "), max_bytes).strip(". ")
    if not text:
        digest = hashlib.sha256((display_name or "").encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return f"character-{digest}"
    stem = text.split(".", 1)[0].rstrip(" ").upper()
    if stem in _WINDOWS_RESERVED or text.startswith(_FORMULA_PREFIXES):
        # a device name on Windows; or a path a spreadsheet would read as a formula (and `-x` an option)
        text = _truncate_utf8("_" + text, max_bytes).rstrip(". ")
    return text


def check_entry_name(name: str) -> str:
    """`name` if it is a safe zip entry name (relative, no `..`, no backslash, no drive); else ValueError."""
    if not name or name.startswith("/") or "\\" in name or ":" in name:
        raise ValueError(f"unsafe archive entry name {name!r}: absolute, drive or backslash")
    for part in name.split("/"):
        problem = _component_problem(part)
        if problem:
            raise ValueError(f"unsafe archive entry name {name!r}: {problem}")
    return name


@functools.lru_cache(maxsize=4096)
def _component_problem(part: str) -> str | None:
    if part in ("", ".", "..") or part.startswith(".") or part != part.strip(" ") or part.endswith("."):
        return f"bad component {part!r}"
    if unicodedata.normalize("NFC", part) != part:
        return "not normalised"
    if any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in part):
        return "invisible characters"
    if _RESERVED_CHARACTERS.search(part) or len(part.encode("utf-8")) > 255:
        return "reserved character or too long"
    if part.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        return "reserved device name"
    return None


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")  # drops a character cut in half


def _assign_folders(characters: dict[int, Character]) -> dict[int, str]:
    """character id -> folder; characters whose safe names collide (ignoring case) get a hash suffix each."""
    wanted = {cid: safe_folder_name(c.name) for cid, c in characters.items()}
    groups: dict[str, list[int]] = {}
    for cid, folder in wanted.items():
        groups.setdefault(folder.casefold(), []).append(cid)
    folders: dict[int, str] = {}
    taken = set(_TAKEN_AT_ROOT)
    for cid, folder in wanted.items():
        if len(groups[folder.casefold()]) == 1 and folder.casefold() not in _TAKEN_AT_ROOT:
            folders[cid] = folder
            taken.add(folder.casefold())
    for cid in sorted(cid for cid in wanted if cid not in folders):
        character = characters[cid]
        identity = (character.key or "") + "\x1f" + character.name
        for length in (8, 16, 32, 64):
            suffix = "-" + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:length]
            base = _truncate_utf8(wanted[cid], MAX_FOLDER_BYTES - len(suffix)).rstrip(". ")
            candidate = (base + suffix) if base else "character" + suffix
            if candidate.casefold() not in taken:
                break
        else:  # pragma: no cover - would need a sha256 collision
            candidate = f"character-{cid}"
        folders[cid] = candidate
        taken.add(candidate.casefold())
    return folders


# --- the manifest ----------------------------------------------------------------------------------

def csv_safe(value: object) -> str:
    """A cell that a spreadsheet shows as text: no formula, whatever the value starts with."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def _clean_label(name: str) -> str:
    """A stored name as it may be shown: NFKC, no invisible characters, single spaces (never raises)."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    return " ".join(text.replace("_", " ").split())


def _iso_utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return _as_utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def _as_utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


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
    return _clean_label(predicted_name), probability


# --- the export ------------------------------------------------------------------------------------

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
        since = _as_utc(since)

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
        decisions = _decide(session, since, min_votes, chat, summary)
        character_ids = {decision.character_id for decision in decisions}
        characters = {c.id: c for c in _in_batches(
            session, lambda ids: select(Character).where(Character.id.in_(ids)), sorted(character_ids))}
        folders = _assign_folders(characters)

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
                           Prediction.model_version, Prediction.created_at)
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
                    label = _clean_label(character.name)
                    agrees = "" if not guess else ("yes" if label_key(guess) == character.key else "no")
                    writer.writerow([csv_safe(cell) for cell in (
                        row.id, entry, label, character.key, decision.votes_for, decision.votes_against,
                        guess, probability, agrees, row.model_version or "", _iso_utc(decision.last_vote_at),
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


def _in_batches(session, statement_for, ids: list) -> Iterator:
    for start in range(0, len(ids), BATCH_SIZE):
        yield from session.scalars(statement_for(ids[start:start + BATCH_SIZE]))


def _decide(session, since, min_votes, chat, summary: ExportSummary) -> list[_Decision]:
    """Settle every voted face's label by majority (pass one: votes only, aggregated in SQL)."""
    statement = (select(Vote.face_id, Vote.verdict, Vote.character_id, Character.key, Face.predicted_name,
                        func.count(Vote.id), func.max(Vote.updated_at), func.max(Vote.created_at))
                 .join(Face, Vote.face_id == Face.id)
                 .outerjoin(Character, Vote.character_id == Character.id)
                 .group_by(Vote.face_id, Vote.verdict, Vote.character_id, Character.key, Face.predicted_name)
                 .order_by(Vote.face_id))
    if chat is not None:
        platform, chat_id = chat
        statement = statement.join(Prediction, Face.prediction_id == Prediction.id).where(
            Prediction.platform == platform, Prediction.chat_id == str(chat_id))
    if since is not None:
        recent = select(Vote.face_id).where(Vote.updated_at >= since)
        statement = statement.where(Vote.face_id.in_(recent))

    decisions: list[_Decision] = []
    groups: list = []
    for row in session.execute(statement.execution_options(yield_per=2000)):
        if groups and row[0] != groups[0][0]:
            _settle(groups, since, min_votes, summary, decisions)
            groups = []
        groups.append(row)
    if groups:
        _settle(groups, since, min_votes, summary, decisions)
    return decisions


def _settle(groups: list, since, min_votes: int, summary: ExportSummary, decisions: list[_Decision]) -> None:
    """One face's votes (grouped by verdict and character) -> a decision, or a count of why not."""
    face_id, predicted_name = groups[0][0], groups[0][4]
    guess_key = label_key(predicted_name) if predicted_name else None
    guess_id: int | None = None
    last: datetime | None = None
    for _, verdict, character_id, key, _, _, updated, created in groups:
        moment = updated or created
        if moment is not None:
            moment = _as_utc(moment)
            last = moment if last is None or moment > last else last
        if guess_key is not None and character_id is not None and (key or "") == guess_key:
            guess_id = character_id
    if since is not None and (last is None or last < since):
        return                                    # the SQL filter did this already; belt and braces
    settled = settle_counts(((verdict, character_id, count) for _, verdict, character_id, _, _, count, _, _
                             in groups), guess_id)
    if settled.character_id is None:
        if settled.tie:
            summary.ties_left_out += 1
        elif any(verdict == "is" and character_id is not None for _, verdict, character_id, *_ in groups):
            summary.outvoted += 1                 # "it is X" outvoted by "it is not X" (X the bot's guess)
        else:
            summary.unnamed += 1
        return
    if settled.votes_for < min_votes:
        summary.below_min_votes += 1
        return
    decisions.append(_Decision(face_id, settled.character_id, settled.votes_for, settled.votes_against,
                               last or datetime.now(timezone.utc)))


def _s(count: int) -> str:
    return "" if count == 1 else "s"
