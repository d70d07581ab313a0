"""The counts of a whole-picture evaluation, and its report files: totals per kind, detection, time,
the headline, a summary for the terminal, report.md and report.json (with misses.png from
`recognizer.training.scene_sheet`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer.training.scene_sheet import contact_sheet
from recognizer.training.scenes import (IOU_THRESHOLDS, KINDS, ManifestProblem, SceneEvaluation, SceneResult,
                                        iou_key, face_from_dict, face_said)


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
        "found_only_by_last_look": sum(r.only_by_last_look for r in readable),
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
        matched = sum(d[iou_key(threshold)] for d in boxed)
        totals[iou_key(threshold)] = {"matched": matched, "recall": _ratio(matched, truth),
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
        text = f"single_known: face found {single['face_found']}/{single['readable']}{_by_look(single)}, "
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
        first = detection[iou_key(IOU_THRESHOLDS[0])]
        parts.append(f"detection ({detection['boxed_scenes']} boxed scenes, IoU>={IOU_THRESHOLDS[0]:g}) "
                     f"recall {_pct(first['recall'])} precision {_pct(first['precision'])}")
    if not parts:
        everything = totals["all"]
        parts.append(f"all: face found {everything['face_found']}/{everything['readable']}, "
                     f"top-1 {everything['top1']}/{everything['with_known']}")
    return "; ".join(parts)


def _by_look(totals: dict) -> str:
    """" (5 only by the last look)", or nothing when none was (older reports lack the count)."""
    count = totals.get("found_only_by_last_look", 0)
    return f" ({count} only by the last look)" if count else ""


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def kind_line(kind: str, totals: dict) -> str:
    """One kind's counts in words."""
    n = totals["readable"]
    text = f"{kind}: {n} picture{'' if n == 1 else 's'}, face found {totals['face_found']}/{n}{_by_look(totals)}"
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
        at = ", ".join(f"IoU>={t:g} recall {_pct(detection[iou_key(t)]['recall'])} precision "
                       f"{_pct(detection[iou_key(t)]['precision'])}" for t in IOU_THRESHOLDS)
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
            d = detection[iou_key(threshold)]
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
        said = "; ".join(f"{f['number']}. " + face_said(face_from_dict(f)) for f in scene["faces"]) or "no face"
        mark = {True: "yes", False: "no", None: "-"}
        lines.append(f"| {name} | {scene['kind']} | {_md(', '.join(scene['characters']))} | "
                     f"{sum(not f['guessed'] for f in scene['faces'])} | {scene['guessed']} | {mark[scene['top1']]} | "
                     f"{mark[scene['top5']]} | {_md(said)} | {_seconds(scene['timings'].get('detect_s'))} | "
                     f"{_seconds(scene['timings'].get('total_s'))} |")
    lines.append("")
    return "\n".join(lines)


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

