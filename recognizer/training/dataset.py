"""Labelled face datasets: ImageFolder directories and the bot's exported zip archives.

A dataset is either
- a folder of folders, one per character, each holding that character's face crops (ImageFolder;
  folders starting with `_`, such as `aniface prelabel`'s `_unsure/`, are not characters), or
- a zip exported by the bot: `<character>/<sha256>.png` entries plus an optional `manifest.csv`.

Several datasets are merged: the same character (same `label_key`) is one class, whatever the folder's
spelling. Every image is identified by the sha256 of its bytes, so the same picture found twice is one
sample, and a picture filed under two different characters is dropped as ambiguous.

Archives are never extracted: members are read into memory one at a time, and only well-formed
`<character>/<file>` entries with an image suffix are considered (no absolute paths, no `..`, no links,
no oversized or suspiciously compressed members).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from recognizer.decode import DecodeLimits
from recognizer.labels import clean_name, display_name, label_key

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"})
ARCHIVE_MANIFEST = "manifest.csv"
#: A zip member that inflates more than this many times its compressed size is refused (zip bomb).
MAX_COMPRESSION_RATIO = 200
#: At most this many members are examined in one archive.
MAX_ARCHIVE_MEMBERS = 500_000


class DatasetError(ValueError):
    """A dataset path that cannot be read as a dataset; the message says why."""


@dataclass(frozen=True)
class Sample:
    """One labelled image: its class key, the sha256 of its bytes, and where its bytes live."""

    label: str            # label_key of the character
    sha256: str
    path: str             # a file, or the archive holding `member`
    member: str | None = None

    @property
    def origin(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path

    def read_bytes(self, max_bytes: int = DecodeLimits().max_bytes) -> bytes:
        if self.member is None:
            with open(self.path, "rb") as handle:
                data = handle.read(max_bytes + 1)
        else:
            with zipfile.ZipFile(self.path) as archive:
                data = _read_member(archive, archive.getinfo(self.member), max_bytes)
        if len(data) > max_bytes:
            raise DatasetError(f"{self.origin} is larger than {max_bytes} bytes")
        return data


@dataclass
class Dataset:
    """Merged samples, the classes (key -> display name) and what was skipped, and why."""

    samples: list[Sample]
    classes: dict[str, str]                       # label_key -> display name, sorted by key
    sources: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)

    def counts(self) -> dict[str, int]:
        counts = {key: 0 for key in self.classes}
        for sample in self.samples:
            counts[sample.label] += 1
        return counts

    def summary(self) -> dict:
        counts = self.counts()
        return {
            "sources": self.sources,
            "images": len(self.samples),
            "classes": len(self.classes),
            "per_class": {self.classes[key]: n for key, n in counts.items()},
            "skipped": len(self.skipped),
            "skipped_examples": [{"origin": origin, "reason": reason} for origin, reason in self.skipped[:20]],
        }


def load_datasets(paths: Iterable[str | os.PathLike], limits: DecodeLimits = DecodeLimits()) -> Dataset:
    """Read and merge datasets (ImageFolder directories and exported zips)."""
    found: list[tuple[str, str, Sample]] = []   # (label key, folder display name, sample)
    sources, skipped = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            entries, skips = _scan_folder(path, limits)
            kind = "folder"
        elif path.is_file() and zipfile.is_zipfile(path):
            entries, skips = _scan_archive(path, limits)
            kind = "archive"
        elif not path.exists():
            raise DatasetError(f"{path}: no such file or folder")
        else:
            raise DatasetError(f"{path} is neither a folder of character folders nor a zip archive")
        sources.append({"path": str(path), "kind": kind, "images": len(entries)})
        found.extend(entries)
        skipped.extend(skips)

    names: dict[str, str] = {}
    by_hash: dict[str, Sample] = {}
    conflicting: set[str] = set()
    for key, name, sample in found:
        names.setdefault(key, name)
        previous = by_hash.get(sample.sha256)
        if previous is None:
            by_hash[sample.sha256] = sample
        elif previous.label != sample.label:
            conflicting.add(sample.sha256)
            skipped.append((sample.origin, f"the same image is also filed as {names[previous.label]!r}"))
        else:
            skipped.append((sample.origin, "duplicate of " + previous.origin))
    samples = sorted((s for h, s in by_hash.items() if h not in conflicting), key=lambda s: (s.label, s.sha256))
    for sha in conflicting:
        skipped.append((by_hash[sha].origin, "the same image is filed under two characters: dropped"))
    used = {s.label for s in samples}
    classes = {key: names[key] for key in sorted(used)}
    return Dataset(samples, classes, sources, skipped)


def _scan_folder(root: Path, limits: DecodeLimits):
    entries, skipped = [], []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            if folder.is_file() and folder.suffix.lower() in IMAGE_SUFFIXES:
                skipped.append((str(folder), "image outside a character folder"))
            continue
        if folder.name.startswith("_"):  # not a character: `_unsure/` of `aniface prelabel`, and the like
            skipped.append((str(folder), "folder starting with '_' is not a character"))
            continue
        try:
            key, name = _label_of(folder.name)
        except ValueError as error:
            skipped.append((str(folder), f"bad character name: {error}"))
            continue
        for file in sorted(folder.iterdir()):
            if file.name.startswith(".") or file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
                continue
            size = file.stat().st_size
            if size == 0 or size > limits.max_bytes:
                skipped.append((str(file), "empty" if size == 0 else "too large"))
                continue
            with open(file, "rb") as handle:
                digest = hashlib.sha256(handle.read(limits.max_bytes + 1)).hexdigest()
            entries.append((key, name, Sample(key, digest, str(file))))
    return entries, skipped


def _scan_archive(path: Path, limits: DecodeLimits):
    entries, skipped = [], []
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise DatasetError(f"{path}: more than {MAX_ARCHIVE_MEMBERS} members")
        display = _archive_display_names(archive)
        for info in infos:
            if info.is_dir():
                continue
            member = info.filename
            parts = _safe_parts(member)
            if parts is None:
                skipped.append((f"{path}!{member}", "unsafe path in archive"))
                continue
            if parts == (ARCHIVE_MANIFEST,):
                continue
            if len(parts) != 2 or PurePosixPath(parts[1]).suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((f"{path}!{member}", "not a <character>/<image> entry"))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append((f"{path}!{member}", "symbolic link"))
                continue
            if info.file_size == 0 or info.file_size > limits.max_bytes or (
                    info.compress_size and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size):
                skipped.append((f"{path}!{member}", "empty, too large or suspiciously compressed"))
                continue
            try:
                key, name = _label_of(display.get(parts[0], parts[0]))
            except ValueError as error:
                skipped.append((f"{path}!{member}", f"bad character name: {error}"))
                continue
            try:
                data = _read_member(archive, info, limits.max_bytes)
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as error:
                skipped.append((f"{path}!{member}", f"unreadable: {error}"))
                continue
            entries.append((key, name, Sample(key, hashlib.sha256(data).hexdigest(), str(path), member)))
    return entries, skipped


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    with archive.open(info) as handle:
        data = handle.read(max_bytes + 1)  # bounded whatever the header claims
    if len(data) > max_bytes:
        raise ValueError("member larger than the size limit")
    return data


def _safe_parts(member: str) -> tuple[str, ...] | None:
    """The path components of a zip member name, or None when it could escape or is odd."""
    if not member or "\\" in member or "\x00" in member or member.startswith("/") or ":" in member.split("/")[0]:
        return None
    parts = tuple(part for part in member.split("/") if part)
    if any(part in (".", "..") or part.startswith(".") for part in parts):
        return None
    return parts


def _archive_display_names(archive: zipfile.ZipFile) -> dict[str, str]:
    """Folder name -> character name, from the archive's manifest.csv when it has one.

    The bot's export writes `path` and `label` columns; other spellings (`file`, `filename`; `display_name`,
    `character`, `name`) are accepted too.
    """
    try:
        info = archive.getinfo(ARCHIVE_MANIFEST)
    except KeyError:
        return {}
    try:
        text = _read_member(archive, info, 64 * 1024 * 1024).decode("utf-8-sig")
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, RuntimeError):
        return {}
    rows = csv.DictReader(io.StringIO(text))
    fields = {name.lower().strip(): name for name in (rows.fieldnames or [])}
    file_column = next((fields[c] for c in ("path", "file", "filename", "member") if c in fields), None)
    name_column = next((fields[c] for c in ("display_name", "label", "character", "name") if c in fields), None)
    if file_column is None or name_column is None:
        return {}
    names: dict[str, str] = {}
    for row in rows:
        parts = _safe_parts(_csv_text(row.get(file_column)))
        name = _csv_text(row.get(name_column))
        if parts and len(parts) == 2 and name:
            names.setdefault(parts[0], name)
    return names


def _csv_text(cell: str | None) -> str:
    """A manifest cell as written: the bot's export quotes cells that a spreadsheet would run as formulas."""
    text = (cell or "").strip()
    if text.startswith("'") and text[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        text = text[1:]
    return text


def _label_of(folder: str) -> tuple[str, str]:
    """(label key, display name) of a character folder; ValueError for an unusable name."""
    name = display_name(clean_name(folder))
    key = label_key(name)
    if not key:
        raise ValueError("the name has no letters or digits")
    return key, name
