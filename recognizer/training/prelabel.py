"""Pre-labelling face crops: a model sorts them into character folders for a person to check.

    from recognizer import Recognizer
    from recognizer.training.prelabel import prelabel
    report = prelabel("crops", Recognizer.load("models/anime"), "sorted")

- Every image under the crops folder (hidden entries skipped; the same bytes twice count once) is
  embedded in batches and classified with the head and gallery, as `Recognizer.classify` does.
- A crop whose best probability reaches the threshold (the model's "unknown" threshold unless given)
  goes to `<guess>/`, any other to `_unsure/`. Folder names are made safe from the labels: no path
  separators, no `.`/`..`, no leading `.` or `_` (those are reserved), no control characters.
- Likeliest errors first: inside each folder, files are named `<rank>_<probability>_<sha256><ext>`
  (`_unsure/` files also carry the guess: `<rank>_<probability>_<guess>_<sha256><ext>`), rank 1 being
  the least confident, so a file browser sorted by name shows first what most needs a look.
  `review.csv` lists every crop, least confident first, with its guess, probability, runner-up and
  margin, and where the crop came from when the crops folder has a harvest `manifest.csv`.
- Files are copied (`move=True` moves them); the bytes are never changed.

Once a person has fixed the mistakes (moved files between folders, sorted or deleted `_unsure/`), the
folder is an ImageFolder dataset for `aniface train`: file names do not matter to it, folders starting
with `_` are not characters, and `review.csv` is not an image.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from recognizer.decode import DecodeLimits, load_image
from recognizer.errors import ImageRejected
from recognizer.training.dataset import IMAGE_SUFFIXES

__all__ = ["PrelabelError", "PrelabelReport", "Prelabelled", "REVIEW_NAME", "UNSURE", "find_crops", "prelabel",
           "safe_folder_name"]

UNSURE = "_unsure"
REVIEW_NAME = "review.csv"
REVIEW_FIELDS = ("rank", "file", "folder", "guess", "probability", "runner_up", "runner_up_probability", "margin",
                 "unsure", "sha256", "original", "source", "time", "box")
#: Folder names are cut to this many characters (the longest character name `aniface train` accepts).
MAX_FOLDER_CHARS = 64
_FORBIDDEN = set('<>:"/\\|?*')
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class PrelabelError(ValueError):
    """The job cannot start (no crops, output folder not empty, ...); the message says why."""


@dataclass(frozen=True)
class Prelabelled:
    """One crop and where it went."""

    original: str                  # the crop file read
    sha256: str
    guess: str | None              # the best candidate's label (also for unsure crops)
    probability: float
    runner_up: str | None
    runner_up_probability: float
    unsure: bool
    folder: str                    # the folder it went to, relative to the output
    file: str                      # its path relative to the output, "folder/name"
    rank: int                      # 1 = least confident in its folder

    @property
    def margin(self) -> float:
        return self.probability - self.runner_up_probability


@dataclass
class PrelabelReport:
    out_dir: str
    threshold: float
    items: list[Prelabelled] = field(default_factory=list)        # least confident first
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, same bytes as)
    moved: bool = False

    @property
    def review_path(self) -> str:
        return os.path.join(self.out_dir, REVIEW_NAME)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.folder] = counts.get(item.folder, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (kv[0] == UNSURE, -kv[1], kv[0])))

    def summary(self) -> dict:
        return {"out_dir": self.out_dir, "threshold": self.threshold, "crops": len(self.items),
                "unsure": sum(item.unsure for item in self.items), "folders": self.counts(),
                "failed": [{"file": path, "error": reason} for path, reason in self.failures],
                "duplicates": len(self.duplicates), "moved": self.moved, "review": self.review_path}


def safe_folder_name(label: str) -> str:
    """A folder name for a label that cannot escape the output folder, hide, or be taken for `_unsure`.

    Path separators, characters Windows forbids and control characters become "_"; leading dots,
    underscores and spaces (and trailing dots and spaces) are stripped; Windows device names get a
    trailing "_"; the name is cut to MAX_FOLDER_CHARS. An empty result becomes `label-<hash>`.
    """
    text = unicodedata.normalize("NFC", str(label))
    text = "".join("_" if ch in _FORBIDDEN or unicodedata.category(ch)[0] == "C" else ch for ch in text)
    text = " ".join(text.split())  # no tabs, runs of spaces
    text = text.lstrip("._ ").rstrip(". ")[:MAX_FOLDER_CHARS].rstrip(". ")
    if not text or text in (".", ".."):
        return "label-" + hashlib.sha256(str(label).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if text.split(".")[0].lower() in _WINDOWS_DEVICES:
        text += "_"
    return text


def find_crops(crops_dir: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[Path]:
    """Image files under `crops_dir`, sorted, hidden entries and the `exclude` folder skipped."""
    root = Path(crops_dir)
    excluded = os.path.realpath(exclude) if exclude is not None else None
    found: list[Path] = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith(".")
                            and os.path.realpath(os.path.join(folder, f)) != excluded)
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                found.append(Path(folder) / name)
    return found


def prelabel(crops_dir: str | os.PathLike, recognizer, out_dir: str | os.PathLike, *,  # noqa: ANN001
             threshold: float | None = None, move: bool = False, batch_size: int = 32, progress: bool = False,
             limits: DecodeLimits = DecodeLimits(), on_message: Callable[[str], None] | None = None,
             ) -> PrelabelReport:
    """Sort the crops under `crops_dir` into `out_dir` with `recognizer` (see the module's docstring).

    `out_dir` must be empty or not exist yet. Unreadable crops are reported in `failures` and left where
    they are.
    """
    say = on_message or (lambda message: None)
    crops_root, out_root = Path(crops_dir), Path(out_dir)
    if not crops_root.is_dir():
        raise PrelabelError(f"{crops_root}: not a folder" if crops_root.exists() else f"{crops_root}: no such folder")
    if out_root.exists() and (not out_root.is_dir() or any(out_root.iterdir())):
        raise PrelabelError(f"{out_root} already exists and is not an empty folder; choose another --out")
    if not recognizer.can_name:
        raise PrelabelError("sorting crops needs a model")
    threshold = recognizer.unknown_threshold if threshold is None else float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise PrelabelError(f"the threshold must be between 0 and 1, not {threshold}")
    files = find_crops(crops_root, exclude=out_root)
    if not files:
        raise PrelabelError(f"no images found in {crops_root}")
    report = PrelabelReport(str(out_root), threshold, moved=move)

    # 1. Read, dedupe by content, embed and classify in batches.
    scored: list[tuple[Path, str, tuple]] = []
    seen: dict[str, Path] = {}
    bar = _bar(len(files), progress)
    try:
        for start in range(0, len(files), batch_size):
            batch_paths, batch_pixels, batch_hashes = [], [], []
            for path in files[start:start + batch_size]:
                try:
                    with open(path, "rb") as handle:
                        data = handle.read(limits.max_bytes + 1)
                    digest = hashlib.sha256(data).hexdigest()
                    if digest in seen:
                        report.duplicates.append((str(path), str(seen[digest])))
                        continue
                    pixels = load_image(data, limits).pixels
                except ImageRejected as error:
                    report.failures.append((str(path), error.user_message))
                    say(f"{path}: {error.user_message}")
                    continue
                except OSError as error:
                    report.failures.append((str(path), error.strerror or str(error)))
                    say(f"{path}: {error.strerror or error}")
                    continue
                seen[digest] = path
                batch_paths.append(path)
                batch_pixels.append(pixels)
                batch_hashes.append(digest)
            if batch_pixels:
                embeddings = recognizer.embed(batch_pixels)
                for path, digest, (candidates, _) in zip(batch_paths, batch_hashes,
                                                         recognizer.classify(np.asarray(embeddings), threshold)):
                    scored.append((path, digest, candidates))
            bar.update(min(batch_size, len(files) - start))
    finally:
        bar.close()

    # 2. Decide folders, rank within each folder, least confident first.
    folder_of_label: dict[str, str] = {}
    used_folders: set[str] = {UNSURE.casefold()}

    def folder_for(label: str) -> str:
        if label not in folder_of_label:
            base = name = safe_folder_name(label)
            counter = 1
            while name.casefold() in used_folders:  # two labels, one safe name: keep them apart
                counter += 1
                name = f"{base[:MAX_FOLDER_CHARS - 4]} {counter}"
            used_folders.add(name.casefold())
            folder_of_label[label] = name
        return folder_of_label[label]

    rows = []
    for path, digest, candidates in scored:
        best = candidates[0] if candidates else None
        second = candidates[1] if len(candidates) > 1 else None
        probability = best.probability if best else 0.0
        unsure = best is None or probability < threshold
        rows.append({
            "path": path, "sha256": digest, "guess": best.name if best else None, "probability": probability,
            "runner_up": second.name if second else None,
            "runner_up_probability": second.probability if second else 0.0,
            "unsure": unsure, "folder": UNSURE if unsure else folder_for(best.name),
        })
    order = sorted(rows, key=lambda r: (r["probability"], r["probability"] - r["runner_up_probability"], r["sha256"]))
    per_folder: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for row in order:
        sizes[row["folder"]] = sizes.get(row["folder"], 0) + 1
    for row in order:
        folder = row["folder"]
        per_folder[folder] = rank = per_folder.get(folder, 0) + 1
        digits = max(4, len(str(sizes[folder])))
        guess_part = ""
        if row["unsure"] and row["guess"]:
            guess_part = safe_folder_name(row["guess"]).replace(" ", "_")[:40] + "_"
        suffix = row["path"].suffix.lower()
        name = f"{rank:0{digits}d}_{_two_decimals(row['probability'])}_{guess_part}{row['sha256']}{suffix}"
        report.items.append(Prelabelled(
            original=str(row["path"]), sha256=row["sha256"], guess=row["guess"], probability=row["probability"],
            runner_up=row["runner_up"], runner_up_probability=row["runner_up_probability"], unsure=row["unsure"],
            folder=folder, file=f"{folder}/{name}", rank=rank))

    # 3. Copy (or move) into place, then write review.csv.
    out_root.mkdir(parents=True, exist_ok=True)
    for folder in sizes:
        (out_root / folder).mkdir(exist_ok=True)
    for item in report.items:
        target = out_root / item.file
        if move:
            _move(Path(item.original), target)
        else:
            _copy(Path(item.original), target)
    _write_review(report, _provenance(crops_root))
    return report


def _two_decimals(probability: float) -> str:
    value = min(max(probability, 0.0), 1.0)
    text = f"{value:.2f}"
    return "0.99" if text == "1.00" and value < 1.0 else text  # "1.00" only when it is


def _copy(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:  # another file system
        _copy(source, target)
        source.unlink()


def _provenance(crops_root: Path) -> dict[str, dict]:
    """sha256 -> harvest manifest row, when the crops folder was made by `aniface harvest`."""
    from recognizer.training.harvest import MANIFEST_NAME, read_manifest

    try:
        return {row["sha256"]: row for row in read_manifest(crops_root / MANIFEST_NAME)}
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


def _write_review(report: PrelabelReport, provenance: dict[str, dict]) -> None:
    path = Path(report.review_path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REVIEW_FIELDS, lineterminator="\n")
        writer.writeheader()
        for rank, item in enumerate(report.items, 1):
            origin = provenance.get(item.sha256, {})
            box = [origin.get(k, "") for k in ("x", "y", "w", "h")]
            writer.writerow({
                "rank": rank, "file": item.file, "folder": item.folder, "guess": item.guess or "",
                "probability": f"{item.probability:.4f}", "runner_up": item.runner_up or "",
                "runner_up_probability": f"{item.runner_up_probability:.4f}", "margin": f"{item.margin:.4f}",
                "unsure": "yes" if item.unsure else "no", "sha256": item.sha256, "original": item.original,
                "source": origin.get("source", ""), "time": origin.get("time", ""),
                "box": " ".join(box) if all(box) else "",
            })
    os.replace(temporary, path)


class _NoBar:
    def update(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="prelabel", unit="crop", leave=False, dynamic_ncols=True)
