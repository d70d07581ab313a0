"""The harvest's output folder, kept consistent whenever a run stops: manifest, state journal, lock, crop files.

`manifest.csv` holds one row per crop; `.harvest-state.jsonl` journals finished sources and video
checkpoints. Rows and lines are appended and flushed, and a torn last line (a crash in the middle of an
append) is dropped when the file is opened again; crops are written to a temporary name and renamed.
`.harvest.lock` keeps a second harvest out of the folder.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

__all__ = ["HarvestError", "Journal", "LOCK_NAME", "Lock", "MANIFEST_FIELDS", "MANIFEST_NAME", "Manifest",
           "STATE_NAME", "read_manifest", "write_atomically"]

MANIFEST_NAME = "manifest.csv"
STATE_NAME = ".harvest-state.jsonl"
LOCK_NAME = ".harvest.lock"
MANIFEST_FIELDS = ("file", "sha256", "source", "kind", "time", "x", "y", "w", "h", "score",
                   "source_width", "source_height", "crop_width", "crop_height", "hash")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class HarvestError(RuntimeError):
    """The harvest as a whole cannot run (output folder unusable, in use, bad settings)."""



def _repair_tail(path: Path) -> None:
    """Drop a torn last line (a crash in the middle of an append)."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(max(size - (1 << 20), 0))
        tail = handle.read()
        cut = tail.rfind(b"\n")
        handle.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)


def _valid_row(row: dict) -> bool:
    sha = row.get("sha256") or ""
    return bool(_SHA256.match(sha)) and row.get("file") == sha + ".png" and bool(_HEX.match(row.get("hash") or ""))


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The valid rows of a harvest manifest (rows a crash tore are left out)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if _valid_row(row)]


class Manifest:
    def __init__(self, path: Path) -> None:
        _repair_tail(path)
        if path.exists() and path.stat().st_size:
            with open(path, newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
            if tuple(header) != MANIFEST_FIELDS:
                raise HarvestError(f"{path} is not a harvest manifest of this version (columns {header[:6]}...)")
        self.rows = read_manifest(path)
        self._handle = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        if self._handle.tell() == 0:
            self._writer.writeheader()
            self._handle.flush()

    def append(self, row: dict) -> None:
        self._writer.writerow(row)

    def flush(self, durable: bool = False) -> None:
        self._handle.flush()
        if durable:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.flush(durable=True)
        self._handle.close()


class Journal:
    """Append-only JSON lines; the last line about a source wins."""

    def __init__(self, path: Path) -> None:
        _repair_tail(path)
        self.entries: dict[str, dict] = {}
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and isinstance(entry.get("source"), str):
                        self.entries[entry["source"]] = entry
        self._handle = open(path, "a", encoding="utf-8")

    def record(self, entry: dict, durable: bool = False) -> None:
        self.entries[entry["source"]] = entry
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()
        if durable:
            os.fsync(self._handle.fileno())

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.sync()
        self._handle.close()


class Lock:
    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            raise HarvestError(f"another harvest is writing to {path.parent}; wait for it or choose another --out")

    def close(self) -> None:
        self._handle.close()  # closing releases the lock


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
