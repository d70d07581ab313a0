"""Whole-picture evaluation: is the right character named on some face of each picture, as people post them?

A scenes directory holds pictures and a `manifest.csv` with one row per picture:

- `file`: the picture, relative to the directory;
- `kind`: `single_known` (one character the model should know), `single` (one face), `multi` (several faces)
  or `open_set` (characters the model does not know: the right answer is "unknown");
- `known_characters`: the characters shown, as dataset folder names (`hatsune_miku`), `;`-separated;
- `gt_face_boxes_xywh` (optional): every face's box as JSON, `[[x, y, w, h], ...]`; empty when the
  faces were not boxed by hand, `[]` for a picture boxed and found to hold no face.

Other columns are ignored. `read_scenes` reads it (bad rows are set aside with a message), `evaluate_scenes`
runs the product path (`Recognizer.identify`) on every picture and counts, `write_scene_report` writes
`report.json`, `report.md` and `misses.png` (a contact sheet of the pictures it got wrong).

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

import numpy as np

from recognizer.decode import DecodeLimits, load_image
from recognizer.errors import ImageRejected
from recognizer.labels import display_name, label_key
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


def _iou_key(threshold: float) -> str:
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
        counts[_iou_key(threshold)] = len(match_boxes(detected, truth, threshold))
    taken = {j for _, j, _ in match_boxes(detected, truth, IOU_THRESHOLDS[0])}
    free = [box for j, box in enumerate(truth) if j not in taken]
    counts["guessed_matched"] = len(match_boxes(guessed, free, IOU_THRESHOLDS[0]))
    return counts


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


def scene_report(results: Sequence[SceneResult], problems: Sequence[ManifestProblem] = (),
                 context: dict | None = None) -> dict:
    """The report as one JSON-ready dict: totals overall and per kind, detection, times, every picture."""
    kinds = {kind: kind_totals([r for r in results if r.scene.kind == kind]) for kind in KINDS}
    report = {
        **(context or {}),
        "pictures": len(results),
        "unreadable": sum(r.error is not None for r in results),
        "manifest_problems": [p.to_dict() for p in problems],
        "totals": {"all": kind_totals(results),
                   **{kind: totals for kind, totals in kinds.items() if totals["pictures"]}},
        "detection": detection_totals(results),
        "misses": [r.scene.file for r in results if r.miss],
        "scenes": [r.to_dict() for r in results],
    }
    report["headline"] = headline(report)
    return report


def kind_totals(results: Sequence[SceneResult]) -> dict:
    """Counts over some pictures (of one kind, or all)."""
    readable = [r for r in results if r.error is None]
    with_known = [r for r in readable if r.known]
    judged_names = [r for r in readable if r.wrong_name is not None]
    return {
        "pictures": len(results),
        "readable": len(readable),
        "face_found": sum(r.face_found for r in readable),
        "only_guessed": sum(r.guessed > 0 and not r.face_found for r in readable),
        "guessed_regions": sum(r.guessed for r in readable),
        "with_known": len(with_known),
        "top1": sum(bool(r.top1) for r in with_known),
        "top5": sum(bool(r.top5) for r in with_known),
        "named": sum(bool(r.named) for r in with_known),
        "top1_only_on_guess": sum(r.top1_only_on_guess for r in with_known),
        "known_characters": sum(len(r.known) for r in with_known),
        "known_characters_top1": sum(len(r.known_top1) for r in with_known),
        "given_a_name": sum(r.given_a_name for r in readable),
        "given_a_wrong_name": sum(bool(r.wrong_name) for r in judged_names),
        "judged_for_wrong_names": len(judged_names),
        "time_s": {stage: _percentiles([r.timings[stage] for r in readable if stage in r.timings])
                   for stage in ("detect_s", "total_s")},
    }


def detection_totals(results: Sequence[SceneResult]) -> dict:
    """Recall and precision of the detector on the pictures boxed by hand, at each IoU threshold."""
    boxed = [r.detection for r in results if r.error is None and r.detection is not None]
    truth = sum(d["truth"] for d in boxed)
    detected = sum(d["detected"] for d in boxed)
    totals: dict = {"boxed_scenes": len(boxed), "faces": truth, "detected": detected,
                    "guessed": sum(d["guessed"] for d in boxed),
                    "guessed_matched": sum(d["guessed_matched"] for d in boxed)}
    for threshold in IOU_THRESHOLDS:
        matched = sum(d[_iou_key(threshold)] for d in boxed)
        totals[_iou_key(threshold)] = {"matched": matched, "recall": _ratio(matched, truth),
                                       "precision": _ratio(matched, detected)}
    return totals


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _percentiles(values: Sequence[float]) -> dict:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return {"p50": None, "p95": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(array, 50)), 4), "p95": round(float(np.percentile(array, 95)), 4),
            "max": round(float(array.max()), 4)}


# --- in words --------------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def headline(report: dict) -> str:
    """The key figures on one line: single_known naming, open_set pictures given a name, detection."""
    totals = report["totals"]
    parts = []
    single = totals.get("single_known")
    if single:
        text = f"single_known: face found {single['face_found']}/{single['readable']}, "
        unknowable = single["readable"] - single["with_known"]
        if single["with_known"]:
            text += f"top-1 {single['top1']}/{single['with_known']}, top-5 {single['top5']}/{single['with_known']}"
            if unknowable:
                text += f" ({unknowable} more show characters the model does not know)"
        else:
            text += "none shows a character the model knows"
        parts.append(text)
    open_set = totals.get("open_set")
    if open_set:
        parts.append(f"open_set given a name {open_set['given_a_name']}/{open_set['readable']}")
    detection = report["detection"]
    if detection["boxed_scenes"]:
        first = detection[_iou_key(IOU_THRESHOLDS[0])]
        parts.append(f"detection ({detection['boxed_scenes']} boxed scenes, IoU>={IOU_THRESHOLDS[0]:g}) "
                     f"recall {_pct(first['recall'])} precision {_pct(first['precision'])}")
    if not parts:
        everything = totals["all"]
        parts.append(f"all: face found {everything['face_found']}/{everything['readable']}, "
                     f"top-1 {everything['top1']}/{everything['with_known']}")
    return "; ".join(parts)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def kind_line(kind: str, totals: dict) -> str:
    """One kind's counts in words."""
    n = totals["readable"]
    text = f"{kind}: {n} picture{'' if n == 1 else 's'}, face found {totals['face_found']}/{n}"
    if totals["only_guessed"]:
        text += f" (+{totals['only_guessed']} with only a guessed region)"
    if totals["with_known"]:
        k = totals["with_known"]
        text += f"; top-1 {totals['top1']}/{k}, top-5 {totals['top5']}/{k}, named {totals['named']}/{k}"
        if totals["top1_only_on_guess"]:
            text += f" ({totals['top1_only_on_guess']} top-1 only on a guessed region)"
        if kind == "multi" or totals["known_characters"] > k:
            text += (f"; known characters top-1 on some face {totals['known_characters_top1']}/"
                     f"{totals['known_characters']}")
    elif kind != "open_set" and n:
        text += "; no character the model knows"
    if kind == "open_set":
        text += f"; given a name {totals['given_a_name']}/{n}"
    elif totals["judged_for_wrong_names"]:
        text += f"; given a wrong name {totals['given_a_wrong_name']}/{totals['judged_for_wrong_names']}"
    return text


def format_summary(report: dict) -> str:
    """The report in a few lines, for a terminal."""
    lines = [report["headline"], ""]
    counted = f"{report['pictures']} pictures"
    if report["unreadable"]:
        counted += f", {report['unreadable']} could not be read"
    if report["manifest_problems"]:
        counted += f"; {len(report['manifest_problems'])} manifest rows set aside"
    model = report.get("model")
    if model:
        counted += f" (model {model['name']} {model['version']}, {model['characters']} characters, " \
                   f"unknown threshold {model['unknown_threshold']:.2f})"
    lines.append(counted)
    for kind in KINDS:
        if kind in report["totals"]:
            lines.append("  " + kind_line(kind, report["totals"][kind]))
    detection = report["detection"]
    if detection["boxed_scenes"]:
        at = ", ".join(f"IoU>={t:g} recall {_pct(detection[_iou_key(t)]['recall'])} precision "
                       f"{_pct(detection[_iou_key(t)]['precision'])}" for t in IOU_THRESHOLDS)
        text = (f"detection on {detection['boxed_scenes']} boxed scenes ({detection['faces']} faces, "
                f"{detection['detected']} detected): {at}")
        if detection["guessed"]:
            text += f"; {detection['guessed']} guessed regions, {detection['guessed_matched']} on a missed face"
        lines.append(text)
    times = report["totals"]["all"]["time_s"]
    lines.append(f"time per picture: detect p50 {_seconds(times['detect_s']['p50'])}, p95 "
                 f"{_seconds(times['detect_s']['p95'])}; total p50 {_seconds(times['total_s']['p50'])}, p95 "
                 f"{_seconds(times['total_s']['p95'])}")
    return "\n".join(lines)


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _said(face: Face) -> str:
    """What a face was called: "Sakura Nene 45%" (a name), "unknown (Sakura Nene 20%)", "no name"."""
    if not face.candidates:
        return "no name"
    best = face.candidates[0]
    guess = f"{_readable(best.name)} {best.probability:.0%}"
    text = guess if face.name is not None else f"unknown ({guess})"
    return ("guess: " + text) if face.guessed else text


def _readable(name: str) -> str:
    try:
        return display_name(name)
    except ValueError:
        return name


def _truth(result: SceneResult) -> str:
    characters = ", ".join(_readable(c) for c in result.scene.characters) or "-"
    if result.scene.kind == "open_set":
        return f"unknown (open set: {characters})"
    return characters


def markdown_report(report: dict) -> str:
    """report.md: the key figures, the totals per kind, detection, every picture."""
    lines = ["# Whole-picture evaluation", "", f"**{_md(report['headline'])}**", ""]
    model = report.get("model")
    if model:
        lines += [f"Model `{_md(model['name'])}` version `{_md(model['version'])}`, {model['characters']} "
                  f"characters, unknown threshold {model['unknown_threshold']:.2f}.", ""]
    if report.get("scenes_dir"):
        lines += [f"Scenes: `{_md(report['scenes_dir'])}`, {report['pictures']} pictures"
                  + (f", {report['unreadable']} could not be read." if report["unreadable"] else "."), ""]
    lines += ["## Per kind", "",
              "| kind | pictures | face found | only guessed | with a known character | top-1 | top-5 | named "
              "| given a name | given a wrong name | detect p50 / p95 | total p50 / p95 |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind in (*KINDS, "all"):
        t = report["totals"].get(kind)
        if not t:
            continue
        wrong = f"{t['given_a_wrong_name']}/{t['judged_for_wrong_names']}" if t["judged_for_wrong_names"] else "-"
        lines.append(f"| {kind} | {t['readable']} | {t['face_found']} | {t['only_guessed']} | {t['with_known']} | "
                     f"{t['top1']} | {t['top5']} | {t['named']} | {t['given_a_name']} | {wrong} | "
                     f"{_seconds(t['time_s']['detect_s']['p50'])} / {_seconds(t['time_s']['detect_s']['p95'])} | "
                     f"{_seconds(t['time_s']['total_s']['p50'])} / {_seconds(t['time_s']['total_s']['p95'])} |")
    multi = report["totals"].get("multi")
    if multi and multi["known_characters"]:
        lines += ["", f"Multi-face pictures: {multi['known_characters_top1']} of {multi['known_characters']} known "
                      "characters are the first candidate of some face."]
    lines += ["", "Top-1 / top-5 / named count the pictures showing a character the model knows: some face's first "
              "candidate / some candidate / some face's name (above the \"unknown\" threshold) is that character. "
              "\"Given a wrong name\": a name not among the picture's characters (multi pictures are not judged: "
              "their lists are not complete).", ""]
    detection = report["detection"]
    lines += ["## Detection", ""]
    if detection["boxed_scenes"]:
        lines += [f"{detection['boxed_scenes']} scenes boxed by hand, {detection['faces']} faces; "
                  f"{detection['detected']} detected, {detection['guessed']} regions only guessed "
                  f"({detection['guessed_matched']} of them on a face no detection matched). Greedy one-to-one "
                  "matching.", "", "| IoU at least | matched | recall | precision |", "| ---: | ---: | ---: | ---: |"]
        for threshold in IOU_THRESHOLDS:
            d = detection[_iou_key(threshold)]
            lines.append(f"| {threshold:g} | {d['matched']} | {_pct(d['recall'])} | {_pct(d['precision'])} |")
    else:
        lines.append("No scene has hand-made boxes (column gt_face_boxes_xywh).")
    if report["manifest_problems"]:
        lines += ["", "## Manifest rows set aside", ""]
        lines += [f"- line {p['line']} `{_md(p['file'])}`: {_md(p['message'])}" for p in report["manifest_problems"]]
    lines += ["", "## Every picture", "", "Misses (on `misses.png`) are marked **miss**.", "",
              "| picture | kind | truth | found | guessed | top-1 | top-5 | said | detect | total |",
              "| --- | --- | --- | ---: | ---: | --- | --- | --- | ---: | ---: |"]
    misses = set(report["misses"])
    for scene in report["scenes"]:
        name = _md(scene["file"]) + (" **miss**" if scene["file"] in misses else "")
        if scene["error"]:
            lines.append(f"| {name} | {scene['kind']} | {_md(', '.join(scene['characters']))} | "
                         f"could not be read: {_md(scene['error'])} | | | | | | |")
            continue
        said = "; ".join(f"{f['number']}. " + _said(_face_from_dict(f)) for f in scene["faces"]) or "no face"
        mark = {True: "yes", False: "no", None: "-"}
        lines.append(f"| {name} | {scene['kind']} | {_md(', '.join(scene['characters']))} | "
                     f"{sum(not f['guessed'] for f in scene['faces'])} | {scene['guessed']} | {mark[scene['top1']]} | "
                     f"{mark[scene['top5']]} | {_md(said)} | {_seconds(scene['timings'].get('detect_s'))} | "
                     f"{_seconds(scene['timings'].get('total_s'))} |")
    lines.append("")
    return "\n".join(lines)


def _face_from_dict(data: dict) -> Face:
    from recognizer.results import Candidate

    return Face(data["number"], Box(*data["box"]), data["detection_score"],
                tuple(Candidate(c["name"], c["probability"]) for c in data["candidates"]), data["name"],
                guessed=data.get("guessed", False))


# --- the report files ------------------------------------------------------------------------------

def write_scene_report(evaluation: SceneEvaluation, directory: str | os.PathLike) -> dict[str, Path]:
    """report.json, report.md and misses.png in `directory` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md", "misses": out / "misses.png"}
    report = evaluation.report
    report["files"] = {key: path.name for key, path in paths.items()}
    sheet = contact_sheet([r for r in evaluation.results if r.miss], evaluation.limits)
    temporary = paths["misses"].with_name("misses.tmp.png")
    sheet.save(temporary, "PNG", optimize=False, compress_level=6)
    os.replace(temporary, paths["misses"])
    _write_atomic(paths["markdown"], markdown_report(report))
    _write_atomic(paths["json"], json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return paths


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


THUMB = 400  # each picture is fitted into a THUMB x THUMB square (no upscaling by draw_faces)
COLUMNS = 5
GUTTER = 14
CAPTION_FONT = 17
CAPTION_FACES = 4  # faces listed under a picture at most
SHEET_BACKGROUND = (255, 255, 255)
LETTERBOX = (48, 48, 48)
INK = (20, 20, 20)
MUTED = (100, 100, 100)
ALERT = (170, 20, 30)


def contact_sheet(results: Sequence[SceneResult], limits: DecodeLimits = DecodeLimits()):
    """A PIL image: each picture as a thumbnail, faces boxed and numbered, captioned with the truth and what
    was said (best name and its probability per face)."""
    from PIL import Image, ImageDraw

    from recognizer.annotate import _font

    title_font, font = _font(CAPTION_FONT + 5), _font(CAPTION_FONT)
    line_h = font.ascent + font.descent + 5
    shown = list(results)[:SHEET_LIMIT]
    caption_lines = 3 + min(max((len(r.faces) for r in shown), default=0), CAPTION_FACES)
    columns = max(1, min(COLUMNS, len(shown)))
    rows = math.ceil(len(shown) / columns) if shown else 0
    cell_w, cell_h = THUMB, THUMB + 6 + caption_lines * line_h
    title_h = title_font.ascent + title_font.descent + 2 * GUTTER
    width = max(columns * cell_w + (columns + 1) * GUTTER, 720)
    height = title_h + rows * (cell_h + GUTTER) + GUTTER
    sheet = Image.new("RGB", (width, height), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if shown:
        title = (f"{len(results)} misses: known character not top-1, or an open-set picture given a name"
                 + (f" (first {len(shown)} shown)" if len(shown) < len(results) else ""))
    else:
        title = "No misses: every known character was top-1 and no open-set picture was given a name"
    draw.text((GUTTER, GUTTER + title_font.ascent), _fit(title, title_font, width - 2 * GUTTER),
              font=title_font.font, fill=INK, anchor="ls")
    for index, result in enumerate(shown):
        left = GUTTER + (index % columns) * (cell_w + GUTTER)
        top = title_h + (index // columns) * (cell_h + GUTTER)
        sheet.paste(_thumbnail(result, limits), (left, top))
        _caption(draw, result, left, top + THUMB + 6, font, line_h)
    return sheet


def _thumbnail(result: SceneResult, limits: DecodeLimits):
    """The picture fitted into a THUMB square on a dark ground, its faces boxed and numbered."""
    from PIL import Image

    from recognizer.annotate import draw_faces

    try:
        pixels = load_image(result.scene.path, limits).pixels
    except (ImageRejected, OSError):
        pixels = np.full((THUMB, THUMB, 3), 128, np.uint8)
        faces: list[Face] = []
    else:
        faces = result.faces
    height, width = pixels.shape[:2]
    scale = min(THUMB / width, THUMB / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(np.ascontiguousarray(pixels)).resize(size, Image.Resampling.LANCZOS)
    canvas = np.empty((THUMB, THUMB, 3), np.uint8)
    canvas[:] = LETTERBOX
    ox, oy = (THUMB - size[0]) // 2, (THUMB - size[1]) // 2
    canvas[oy:oy + size[1], ox:ox + size[0]] = np.asarray(small)
    marks = []
    for face in faces:  # numbers only on the picture: the caption says the names
        x, y = ox + round(face.box.x * scale), oy + round(face.box.y * scale)
        w, h = max(1, round(face.box.w * scale)), max(1, round(face.box.h * scale))
        marks.append(Face(face.number, Box(x, y, min(w, THUMB - x), min(h, THUMB - y)), face.detection_score))
    return draw_faces(canvas, marks)


def _caption(draw, result: SceneResult, left: int, top: int, font, line_h: int) -> None:
    from recognizer.annotate import colour_for, text_colour_for

    def line(row: int, text: str, fill=INK, indent: int = 0) -> None:
        draw.text((left + indent, top + row * line_h + font.ascent), _fit(text, font, THUMB - indent),
                  font=font.font, fill=fill, anchor="ls")

    line(0, result.scene.file, MUTED)
    line(1, f"truth: {_truth(result)}")
    line(2, _verdict(result), ALERT)
    faces = result.faces
    if not faces:
        return  # the verdict says "no face found"
    listed = faces if len(faces) <= CAPTION_FACES else faces[:CAPTION_FACES - 1]
    for row, face in enumerate(listed, start=3):
        badge = str(face.number)
        badge_w = round(font.font.getlength(badge)) + 8
        y = top + row * line_h
        colour = colour_for(face.number)
        draw.rectangle((left, y, left + badge_w - 1, y + line_h - 3), fill=colour)
        draw.text((left + 4, y + font.ascent), badge, font=font.font, fill=text_colour_for(colour), anchor="ls")
        line(row, _said(face), indent=badge_w + 6)
    if len(listed) < len(faces):
        line(3 + len(listed), f"... and {len(faces) - len(listed)} more faces", MUTED)


def _verdict(result: SceneResult) -> str:
    if result.scene.kind == "open_set":
        return "open set, yet given a name" if result.given_a_name else "open set, called unknown"
    if not result.faces:
        return "no face found"
    if not result.known:
        return "no character the model knows"
    if result.known_top1 == result.known:
        return "named right (top-1)" + ("" if result.face_found else " on a guessed region")
    if len(result.known) > 1:
        return (f"{len(result.known_top1)} of {len(result.known)} known characters top-1"
                + ("" if result.face_found else "; only a guessed region"))
    where = "in the top 5" if result.top5 else "not in the top 5"
    return ("not top-1, " if result.face_found else "only a guessed region, not top-1, ") + where


def _fit(text: str, font, width: int) -> str:
    """`text` made drawable and cut with an ellipsis to fit `width` pixels."""
    from recognizer.annotate import ELLIPSIS, clean_text

    text = clean_text(text, max_chars=200)
    if font.font.getlength(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if font.font.getlength(text[:mid].rstrip() + ELLIPSIS) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS
