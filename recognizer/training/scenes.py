"""Whole-picture evaluation: is the right character named on some face of each picture, as people post them?

A scenes directory holds pictures and a `manifest.csv` with one row per picture:

- `file`: the picture, relative to the directory;
- `kind`: `single_known` (one character the model should know), `single` (one face), `multi` (several faces)
  or `open_set` (characters the model does not know: the right answer is "unknown");
- `known_characters`: the characters shown, as dataset folder names (`hatsune_miku`), `;`-separated;
- `gt_face_boxes_xywh` (optional): every face's box as JSON, `[[x, y, w, h], ...]`; empty when the
  faces were not boxed by hand, `[]` for a picture boxed and found to hold no face.

Other columns are ignored. `read_scenes` reads it (bad rows are set aside with a message), `evaluate_scenes`
runs the product path (`Recognizer.identify`) on every picture and scores it; `recognizer.training.
scene_report` counts and writes `report.json` and `report.md`, `recognizer.training.scene_sheet` draws
`misses.png` (a contact sheet of the pictures it got wrong).

Names are compared with `recognizer.labels.label_key`: the folder `hatsune_miku` is the label "Hatsune Miku".
A face the recognizer only guessed (`Face.guessed`: no face was found, it looked at the likeliest region) is
no "face found" and no detection; its names still count, as the product says them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from recognizer.decode import DecodeLimits
from recognizer.errors import ImageRejected
from recognizer.labels import label_key, readable_name
from recognizer.results import Box, Face

MANIFEST = "manifest.csv"
KINDS = ("single_known", "single", "multi", "open_set")
REQUIRED_COLUMNS = ("file", "kind", "known_characters")
BOXES_COLUMN = "gt_face_boxes_xywh"
IOU_THRESHOLDS = (0.3, 0.5)  # the first is the headline's
SHEET_LIMIT = 120  # pictures on the contact sheet at most


class ScenesError(ValueError):
    """A scenes directory that cannot be evaluated at all (no manifest, columns missing, nothing usable)."""


# --- the manifest ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scene:
    """One picture of the manifest."""

    file: str
    path: Path
    kind: str
    characters: tuple[str, ...]
    boxes: tuple[Box, ...] | None  # None: the faces were not boxed by hand
    line: int = 0  # its line in manifest.csv


@dataclass(frozen=True)
class ManifestProblem:
    """A manifest row that was set aside, and why."""

    line: int
    file: str
    message: str

    def __str__(self) -> str:
        where = f"{MANIFEST} line {self.line}"
        return f"{where} ({self.file}): {self.message}" if self.file else f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"line": self.line, "file": self.file, "message": self.message}


@dataclass
class SceneManifest:
    directory: Path
    scenes: list[Scene]
    problems: list[ManifestProblem] = field(default_factory=list)


def read_scenes(directory: str | os.PathLike) -> SceneManifest:
    """The scenes of `directory`/manifest.csv. Rows that cannot be used (no such file, a box that is not
    `[x, y, w, h]`, an unknown kind, a file listed twice) are set aside in `.problems`; a missing manifest or
    missing column raises ScenesError."""
    root = Path(directory)
    manifest = root / MANIFEST
    if not root.is_dir():
        raise ScenesError(f"no scenes directory at {root}")
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScenesError(f"no {MANIFEST} in {root} (columns: file, kind, known_characters, "
                          f"optionally {BOXES_COLUMN})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenesError(f"cannot read {manifest}: {error}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ScenesError(f"{manifest} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                          f"(it has: {', '.join(columns) or 'nothing'})")
    reader.fieldnames = columns
    scenes: list[Scene] = []
    problems: list[ManifestProblem] = []
    seen: set[str] = set()
    try:
        for row in reader:
            line = reader.line_num
            file = (row.get("file") or "").strip()
            problem = _row_problem(root, row, file, seen)
            if isinstance(problem, str):
                problems.append(ManifestProblem(line, file, problem))
                continue
            seen.add(file)
            kind, characters, boxes = problem
            scenes.append(Scene(file, root / file, kind, characters, boxes, line))
    except csv.Error as error:
        raise ScenesError(f"{manifest} line {reader.line_num}: not valid CSV: {error}") from None
    return SceneManifest(root, scenes, problems)


def _row_problem(root: Path, row: dict, file: str, seen: set[str]):
    """What is wrong with a manifest row (a message), else its (kind, characters, boxes)."""
    if None in row:
        return "more fields than the header has columns"
    if not file:
        return "the file column is empty"
    if file in seen:
        return "this file is listed twice"
    path = root / file
    if not path.is_file():
        return "no such file in the scenes directory"
    kind = (row.get("kind") or "").strip()
    if kind not in KINDS:
        return f"kind {kind!r} is not one of {', '.join(KINDS)}"
    characters = tuple(part.strip() for part in (row.get("known_characters") or "").split(";") if part.strip())
    if kind == "single_known" and not characters:
        return "a single_known picture needs its character in known_characters"
    boxes = parse_boxes(row.get(BOXES_COLUMN) or "")
    if isinstance(boxes, str):
        return f"{BOXES_COLUMN}: {boxes}"
    return kind, characters, boxes


def parse_boxes(text: str) -> tuple[Box, ...] | None | str:
    """Boxes from JSON `[[x, y, w, h], ...]`; None for an empty cell (not boxed); a message when malformed."""
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"not JSON ({error.args[0] if error.args else error})"
    if not isinstance(value, list):
        return "expected a list of [x, y, w, h] boxes"
    boxes = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in item)):
            return f"{json.dumps(item)[:40]} is not a box [x, y, w, h] of 4 numbers"
        x, y, w, h = (round(v) for v in item)
        if w <= 0 or h <= 0:
            return f"{json.dumps(item)} has no area"
        boxes.append(Box(x, y, w, h))
    return tuple(boxes)


# --- matching boxes --------------------------------------------------------------------------------

def match_boxes(predicted: Sequence[Box], truth: Sequence[Box], min_iou: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching: the pair with the highest IoU first, each box in one pair at most,
    pairs under `min_iou` never. Returns (predicted index, truth index, IoU), best first."""
    pairs = sorted(((p.iou(t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)),
                   key=lambda pair: (-pair[0], pair[1], pair[2]))
    used_predicted: set[int] = set()
    used_truth: set[int] = set()
    matches = []
    for iou, i, j in pairs:
        if iou < min_iou or iou <= 0:
            break
        if i in used_predicted or j in used_truth:
            continue
        used_predicted.add(i)
        used_truth.add(j)
        matches.append((i, j, iou))
    return matches


def iou_key(threshold: float) -> str:
    return f"iou_{threshold:g}"


# --- one picture -----------------------------------------------------------------------------------

@dataclass
class SceneResult:
    """What the recognizer said about one picture, and how that compares with the truth."""

    scene: Scene
    faces: list[Face] = field(default_factory=list)
    error: str | None = None  # the picture could not be read
    known: tuple[str, ...] = ()  # the picture's characters that the model knows
    face_found: bool = False  # a face was detected (guessed regions do not count)
    guessed: int = 0  # regions only guessed
    only_by_last_look: bool = False  # every face found is an approximate one, from the verifier's last look
    top1: bool | None = None  # None: no character of the picture is known to the model
    top5: bool | None = None
    named: bool | None = None  # a face's name (above the "unknown" threshold) is a character of the picture
    top1_only_on_guess: bool = False  # right top-1 only on a guessed region
    known_top1: tuple[str, ...] = ()  # which known characters are some face's first candidate
    given_a_name: bool = False  # some face got a name (not "unknown")
    wrong_name: bool | None = None  # some face got a name not among the picture's characters (not for multi)
    detection: dict | None = None  # with hand-made boxes: counts, matches per IoU threshold
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def miss(self) -> bool:
        """Known character(s) not all named top-1, or an open-set picture given a name."""
        if self.error is not None:
            return False
        if self.scene.kind == "open_set":
            return self.given_a_name
        return bool(self.known) and len(self.known_top1) < len(self.known)

    def to_dict(self) -> dict:
        return {
            "file": self.scene.file,
            "kind": self.scene.kind,
            "characters": list(self.scene.characters),
            "known": list(self.known),
            "error": self.error,
            "face_found": self.face_found,
            "guessed": self.guessed,
            "only_by_last_look": self.only_by_last_look,
            "top1": self.top1,
            "top5": self.top5,
            "named": self.named,
            "top1_only_on_guess": self.top1_only_on_guess,
            "known_top1": list(self.known_top1),
            "given_a_name": self.given_a_name,
            "wrong_name": self.wrong_name,
            "detection": self.detection,
            "timings": {key: round(value, 4) if math.isfinite(value) else None for key, value in self.timings.items()},
            "faces": [face.to_dict() for face in self.faces],
        }


def score_scene(scene: Scene, faces: Sequence[Face], labels: Iterable[str]) -> SceneResult:
    """Compare what was said about `scene` (`faces`, from `Recognizer.identify`) with its truth;
    `labels` are the names the recognizer can give."""
    model_keys = {label_key(label) for label in labels}
    known = tuple(c for c in scene.characters if label_key(c) in model_keys)
    known_keys = {label_key(c) for c in known}
    all_keys = {label_key(c) for c in scene.characters}
    faces = list(faces)
    firsts = [(face, label_key(face.candidates[0].name)) for face in faces if face.candidates]
    result = SceneResult(scene, faces, known=known)
    result.face_found = any(not face.guessed for face in faces)
    result.guessed = sum(face.guessed for face in faces)
    result.only_by_last_look = result.face_found and all(face.approximate for face in faces if not face.guessed)
    names = [label_key(face.name) for face in faces if face.name is not None]
    result.given_a_name = bool(names)
    if scene.kind != "multi":
        result.wrong_name = any(name not in all_keys for name in names)
    if known:
        result.top1 = any(key in known_keys for _, key in firsts)
        result.top5 = any(label_key(c.name) in known_keys for face in faces for c in face.candidates)
        result.named = any(name in known_keys for name in names)
        result.top1_only_on_guess = result.top1 and not any(key in known_keys for face, key in firsts
                                                            if not face.guessed)
        said = {key for _, key in firsts}
        result.known_top1 = tuple(c for c in known if label_key(c) in said)
    if scene.boxes is not None:
        result.detection = detection_counts([f.box for f in faces if not f.guessed],
                                            [f.box for f in faces if f.guessed], scene.boxes)
    return result


def detection_counts(detected: Sequence[Box], guessed: Sequence[Box], truth: Sequence[Box]) -> dict:
    """Faces boxed by hand, detections, and the matches at each IoU threshold; guessed regions are matched
    apart, against the boxes no detection took (at the first threshold)."""
    counts: dict = {"truth": len(truth), "detected": len(detected), "guessed": len(guessed)}
    for threshold in IOU_THRESHOLDS:
        counts[iou_key(threshold)] = len(match_boxes(detected, truth, threshold))
    taken = {j for _, j, _ in match_boxes(detected, truth, IOU_THRESHOLDS[0])}
    free = [box for j, box in enumerate(truth) if j not in taken]
    counts["guessed_matched"] = len(match_boxes(guessed, free, IOU_THRESHOLDS[0]))
    return counts


def face_said(face: Face) -> str:
    """What a face was called: "Sakura Nene 45%" (a name), "unknown (Sakura Nene 20%)", "no name"."""
    if not face.candidates:
        return "no name"
    best = face.candidates[0]
    guess = f"{readable_name(best.name)} {best.probability:.0%}"
    text = guess if face.name is not None else f"unknown ({guess})"
    return ("guess: " + text) if face.guessed else text


def truth_text(result: SceneResult) -> str:
    characters = ", ".join(readable_name(c) for c in result.scene.characters) or "-"
    if result.scene.kind == "open_set":
        return f"unknown (open set: {characters})"
    return characters



def face_from_dict(data: dict) -> Face:
    from recognizer.results import Candidate

    return Face(data["number"], Box(*data["box"]), data["detection_score"],
                tuple(Candidate(c["name"], c["probability"]) for c in data["candidates"]), data["name"],
                guessed=data.get("guessed", False))

# --- all pictures ----------------------------------------------------------------------------------

@dataclass
class SceneEvaluation:
    results: list[SceneResult]
    report: dict
    limits: DecodeLimits = DecodeLimits()


def evaluate_scenes(recognizer, scenes: SceneManifest | Sequence[Scene], *, progress: bool = False,
                    on_error: Callable[[Scene, str], None] | None = None) -> SceneEvaluation:
    """Run `recognizer.identify` (a `recognizer.Recognizer`) on every scene and count (see `scene_report`).

    A picture that cannot be read is reported as such (and to `on_error`) and the rest goes on.
    """
    from tqdm import tqdm

    problems = list(scenes.problems) if isinstance(scenes, SceneManifest) else []
    directory = scenes.directory if isinstance(scenes, SceneManifest) else None
    items = list(scenes.scenes if isinstance(scenes, SceneManifest) else scenes)
    labels = recognizer.labels
    results = []
    for scene in tqdm(items, desc="scenes", unit="picture", disable=not progress, leave=False, dynamic_ncols=True):
        started = time.perf_counter()
        try:
            pixels = recognizer.read(scene.path)
        except (ImageRejected, OSError) as error:
            message = _read_error(error)
            results.append(SceneResult(scene, error=message))
            if on_error is not None:
                on_error(scene, message)
            continue
        decoded = time.perf_counter()
        timings: dict[str, float] = {}
        faces = recognizer.identify(pixels, timings=timings)
        finished = time.perf_counter()
        result = score_scene(scene, [replace(face, embedding=None) for face in faces], labels)
        result.timings = {"decode_s": decoded - started, "detect_s": timings.get("detect_s", math.nan),
                          "name_s": timings.get("name_s", math.nan), "total_s": finished - started}
        results.append(result)
    model = getattr(recognizer, "model", None)
    context = {
        "scenes_dir": str(directory) if directory is not None else None,
        "model": ({"name": model.manifest.name, "version": model.manifest.version,
                   "characters": len(model.manifest.labels), "unknown_threshold": recognizer.unknown_threshold}
                  if model is not None else None),
        "settings": _settings_dict(getattr(recognizer, "settings", None)),
    }
    from recognizer.training.scene_report import scene_report

    report = scene_report(results, problems, context)
    limits = getattr(getattr(recognizer, "settings", None), "limits", DecodeLimits())
    return SceneEvaluation(results, report, limits)


def _read_error(error: Exception) -> str:
    if isinstance(error, ImageRejected):
        return error.user_message
    if isinstance(error, FileNotFoundError):
        return "no such file"
    return getattr(error, "strerror", None) or str(error) or "cannot read this file"


def _settings_dict(settings) -> dict | None:
    if settings is None:
        return None
    return {"detector": settings.detector, "scan": settings.scan, "detect_max_side": settings.detect_max_side,
            "cascade": settings.cascade_path}


