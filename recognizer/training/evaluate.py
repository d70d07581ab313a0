"""Evaluation: how well a model names the characters of a labelled dataset, and where it fails.

`evaluate_model` runs a model over datasets (features from the feature cache) and `evaluate_predictions`
turns probabilities into a report: top-1 / top-5 accuracy overall and per class, per-class precision and
recall, the most confused pairs, the confusion matrix and, given images of characters the model does not
know, how the "unknown" threshold trades coverage for accuracy and which threshold it recommends.
`write_report` writes `report.json`, `report.md`, `confusion.png` and `threshold.png`.

Images of a dataset class the model has no label for (by `label_key`) count as "unknown" characters.
Images the model was trained or validated on (its `split.json`) are left out unless asked otherwise.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from recognizer.backbone import Backbone
from recognizer.labels import label_key
from recognizer.model import ModelFiles
from recognizer.training.dataset import Dataset
from recognizer.training.feature_cache import FeatureCache, backbone_factory, extract_features

SPLIT_FILE = "split.json"
# Every 0.01, and finer near 1, where a calibrated head's confident answers crowd.
THRESHOLDS = np.unique(np.round(np.concatenate([np.linspace(0.0, 1.0, 101), [0.992, 0.995, 0.998, 0.999]]), 4))
CONFUSED_PAIRS = 15


@dataclass
class Evaluation:
    report: dict
    confusion: np.ndarray          # (C, C) counts, rows true, columns predicted
    labels: list[str]


def read_split(model_dir: str | os.PathLike) -> dict[str, list[str]] | None:
    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {part: list(data.get(part, [])) for part in ("train", "val", "test")}


def evaluate_model(model: ModelFiles, dataset: Dataset, *, exclude: set[str] | frozenset[str] = frozenset(),
                   cache: FeatureCache | None = None, weights_path: str | os.PathLike | None = None,
                   backbone: Backbone | None = None, make_backbone: Callable[[], Backbone] | None = None,
                   seed: int | None = None, progress: bool = True) -> Evaluation:
    """Run `model` over `dataset` (minus the images whose sha256 is in `exclude`) and report."""
    labels = list(model.manifest.labels)
    index_of = {label_key(label): i for i, label in enumerate(labels)}
    samples = [s for s in dataset.samples if s.sha256 not in exclude]
    excluded = len(dataset.samples) - len(samples)
    spec = model.manifest.backbone
    own_weights = getattr(model, "backbone_weights", None)  # a model may carry its own (as the Recognizer reads it)
    converted = getattr(model, "converted_backbone", None)  # measured as it is served: on LiteRT
    network = None
    if converted is not None and backbone is None and make_backbone is None:
        make_backbone = lambda: Backbone.converted(spec, converted)  # noqa: E731
        network = "litert-" + str((model.manifest.converted_backbone or {}).get("sha256", ""))[:16]
    lazy = backbone_factory(spec, own_weights or weights_path, seed=seed, backbone=backbone,
                            make_backbone=make_backbone)
    features = extract_features(samples, spec, ("orig",), cache=cache, make_backbone=lazy, seed=seed,
                                progress=progress, description="features (evaluate)", network=network)
    known_rows = [i for i, s in enumerate(samples) if features.ok[i] and s.label in index_of]
    unknown_rows = [i for i, s in enumerate(samples) if features.ok[i] and s.label not in index_of]
    matrix = features["orig"]
    p_known = model.head.probabilities(matrix[known_rows]) if known_rows else np.zeros((0, len(labels)))
    p_unknown = model.head.probabilities(matrix[unknown_rows]) if unknown_rows else np.zeros((0, len(labels)))
    targets = np.array([index_of[samples[i].label] for i in known_rows], dtype=np.int64)
    evaluation = evaluate_predictions(p_known, targets, labels, p_unknown,
                                      current_threshold=model.manifest.unknown_threshold)
    not_in_model = sorted({dataset.classes[samples[i].label] for i in unknown_rows})
    evaluation.report["model"] = {"name": model.manifest.name, "version": model.manifest.version,
                                  "classes": len(labels), "backbone": spec.to_dict(),
                                  "backbone_runtime": "litert " + str((model.manifest.converted_backbone or {}).get(
                                      "precision")) if network else "tensorflow"}
    evaluation.report["images"].update({
        "excluded_seen_in_training": excluded,
        "unreadable": len(features.stats.failures),
        "unknown_characters": not_in_model,
        "features": {"cached": features.stats.cached, "computed": features.stats.computed},
    })
    return evaluation


def evaluate_predictions(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str],
                         unknown_probabilities: np.ndarray | None = None,
                         current_threshold: float | None = None) -> Evaluation:
    """The report for known images (`probabilities`, `targets`) and images of unknown characters."""
    labels = list(labels)
    classes = len(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, classes)
    targets = np.asarray(targets, dtype=np.int64)
    unknown = (np.zeros((0, classes)) if unknown_probabilities is None
               else np.asarray(unknown_probabilities, dtype=np.float64).reshape(-1, classes))
    order = np.argsort(-probabilities, axis=1, kind="stable")
    predicted = order[:, 0] if len(targets) else np.zeros(0, np.int64)
    in_top5 = (order[:, :5] == targets[:, None]).any(axis=1) if len(targets) else np.zeros(0, bool)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (targets, predicted), 1)

    per_class = {}
    for c, label in enumerate(labels):
        n = int(confusion[c].sum())
        called = int(confusion[:, c].sum())
        right = int(confusion[c, c])
        per_class[label] = {
            "n": n,
            "precision": _ratio(right, called),
            "recall": _ratio(right, n),
            "top5": _ratio(int(in_top5[targets == c].sum()), n),
            "predicted": called,
        }
    report = {
        "top1": _ratio(int((predicted == targets).sum()), len(targets)),
        "top5": _ratio(int(in_top5.sum()), len(targets)),
        "images": {"known": int(len(targets)), "unknown": int(len(unknown))},
        "per_class": per_class,
        "weakest_classes": [
            {"name": label, **per_class[label]}
            for label in sorted((l for l in labels if per_class[l]["n"]),
                                key=lambda l: (per_class[l]["recall"], per_class[l]["precision"] or 0))[:10]],
        "confused_pairs": confused_pairs(confusion, labels),
        "confusion_matrix": {"labels": labels, "counts": confusion.tolist()},
        "threshold": threshold_analysis(probabilities, targets, unknown, current_threshold),
    }
    return Evaluation(report, confusion, labels)


def confused_pairs(confusion: np.ndarray, labels: Sequence[str], limit: int = CONFUSED_PAIRS) -> list[dict]:
    """Pairs of classes most often mistaken for one another (both directions added up)."""
    pairs = []
    for a in range(len(labels)):
        for b in range(a + 1, len(labels)):
            total = int(confusion[a, b] + confusion[b, a])
            if total:
                pairs.append({"a": labels[a], "b": labels[b], "a_as_b": int(confusion[a, b]),
                              "b_as_a": int(confusion[b, a]), "total": total})
    pairs.sort(key=lambda p: (-p["total"], p["a"], p["b"]))
    return pairs[:limit]


def threshold_analysis(probabilities: np.ndarray, targets: np.ndarray, unknown: np.ndarray,
                       current: float | None = None) -> dict:
    """Coverage and accuracy as the "unknown" threshold moves, and the threshold to use.

    For each threshold t, a face is named when its best probability is >= t and called "unknown" otherwise:
    - known_coverage: share of known characters' images that get a name;
    - known_accuracy: share of the named ones that are named right;
    - known_correct: share of known images named right (right and above t);
    - unknown_rejected: share of unknown characters' images called "unknown";
    - balanced: the mean of known_correct and unknown_rejected (independent of how many of each there are).
    The recommended threshold maximises `balanced` (the lowest such t); it needs unknown images.
    """
    top_known = probabilities.max(axis=1) if len(targets) else np.zeros(0)
    right = probabilities.argmax(axis=1) == targets if len(targets) else np.zeros(0, bool)
    top_unknown = unknown.max(axis=1) if len(unknown) else np.zeros(0)
    curve = []
    for t in THRESHOLDS:
        accepted = top_known >= t
        point = {
            "threshold": float(t),
            "known_coverage": _ratio(int(accepted.sum()), len(targets)),
            "known_accuracy": _ratio(int((accepted & right).sum()), int(accepted.sum())),
            "known_correct": _ratio(int((accepted & right).sum()), len(targets)),
        }
        if len(unknown):
            point["unknown_rejected"] = _ratio(int((top_unknown < t).sum()), len(unknown))
            point["balanced"] = 0.5 * ((point["known_correct"] or 0.0) + point["unknown_rejected"])
        curve.append(point)
    result: dict = {"current": current, "curve": curve, "recommended": None,
                    "rule": "maximises the mean of known images named right and unknown images rejected"}
    if len(unknown) and len(targets):
        best = max(curve, key=lambda p: (p["balanced"], -p["threshold"]))
        result["recommended"] = best["threshold"]
        result["at_recommended"] = best
    else:
        result["note"] = ("no images of characters outside the model were given: no threshold is recommended; "
                          "add a dataset with other characters to get one")
    if current is not None:
        result["at_current"] = _point_at(probabilities, right, top_known, top_unknown, current)
    for coverage in (0.9, 0.95):
        reaching = [p for p in curve if p["known_coverage"] is not None and p["known_coverage"] >= coverage]
        if reaching:
            result[f"max_threshold_for_known_coverage_{int(coverage * 100)}"] = reaching[-1]["threshold"]
    return result


def _point_at(probabilities, right, top_known, top_unknown, t: float) -> dict:
    accepted = top_known >= t
    point = {"threshold": t,
             "known_coverage": _ratio(int(accepted.sum()), len(top_known)),
             "known_accuracy": _ratio(int((accepted & right).sum()), int(accepted.sum())),
             "known_correct": _ratio(int((accepted & right).sum()), len(top_known))}
    if len(top_unknown):
        point["unknown_rejected"] = _ratio(int((top_unknown < t).sum()), len(top_unknown))
    return point


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator / denominator) if denominator else None


# --- writing the report --------------------------------------------------------------------------

def write_report(evaluation: Evaluation, directory: str | os.PathLike) -> dict[str, Path]:
    """report.json, report.md, confusion.png and threshold.png in `directory` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md",
             "confusion": out / "confusion.png", "threshold": out / "threshold.png"}
    report = evaluation.report
    report["files"] = {key: path.name for key, path in paths.items()}
    plot_confusion(evaluation.confusion, evaluation.labels, paths["confusion"],
                   title=_title(report))
    plot_threshold(report["threshold"], paths["threshold"])
    _write_atomic(paths["markdown"], markdown_report(report))
    _write_atomic(paths["json"], json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return paths


def _title(report: dict) -> str:
    top1, top5 = report.get("top1"), report.get("top5")
    known = report["images"]["known"]
    text = f"{known} images"
    if top1 is not None:
        text += f", top-1 {top1:.1%}, top-5 {top5:.1%}"
    return text


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_report(report: dict) -> str:
    images = report["images"]
    lines = ["# Evaluation", ""]
    model = report.get("model")
    if model:
        lines += [f"Model `{_md(model['name'])}` version `{_md(model['version'])}`, {model['classes']} characters.", ""]
    lines += [f"- images of known characters: {images['known']}",
              f"- images of unknown characters: {images['unknown']}"]
    if "excluded_seen_in_training" in images:
        lines.append(f"- left out (the model trained or validated on them): {images['excluded_seen_in_training']}")
    if images.get("unreadable"):
        lines.append(f"- unreadable: {images['unreadable']}")
    lines += ["", f"**Top-1 accuracy: {_pct(report['top1'])}**, top-5 accuracy: {_pct(report['top5'])}", ""]

    threshold = report["threshold"]
    lines += ["## The \"unknown\" threshold", ""]
    if threshold.get("current") is not None and threshold.get("at_current"):
        at = threshold["at_current"]
        text = (f"Current threshold {threshold['current']:.2f}: names {_pct(at['known_coverage'])} of known faces, "
                f"{_pct(at['known_accuracy'])} of them right")
        if "unknown_rejected" in at:
            text += f"; calls {_pct(at['unknown_rejected'])} of unknown faces \"unknown\""
        lines += [text + ".", ""]
    if threshold.get("recommended") is not None:
        at = threshold["at_recommended"]
        lines += [f"Recommended threshold **{threshold['recommended']:.2f}** ({threshold['rule']}): names "
                  f"{_pct(at['known_coverage'])} of known faces ({_pct(at['known_accuracy'])} right) and calls "
                  f"{_pct(at['unknown_rejected'])} of unknown faces \"unknown\".", ""]
    else:
        lines += [threshold.get("note", ""), ""]
    lines += ["See `threshold.png` for the whole curve.", ""]

    lines += ["## Most confused pairs", ""]
    if report["confused_pairs"]:
        lines += ["| character A | character B | A taken for B | B taken for A |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {_md(p['a'])} | {_md(p['b'])} | {p['a_as_b']} | {p['b_as_a']} |" for p in report["confused_pairs"]]
    else:
        lines.append("None.")
    lines += ["", "## Per character (weakest first)", "",
              "| character | images | recall (top-1) | precision | top-5 |", "| --- | ---: | ---: | ---: | ---: |"]
    per_class = report["per_class"]
    ordered = sorted(per_class, key=lambda name: (per_class[name]["recall"] is None,
                                                  per_class[name]["recall"] or 0, name))
    for name in ordered:
        row = per_class[name]
        lines.append(f"| {_md(name)} | {row['n']} | {_pct(row['recall'])} | {_pct(row['precision'])} | "
                     f"{_pct(row['top5'])} |")
    lines += ["", "The confusion matrix is in `confusion.png` (rows: true character, columns: predicted; "
              "colour: share of the row, numbers: image counts).", ""]
    return "\n".join(lines)


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], path: str | os.PathLike, title: str = "") -> None:
    """A confusion matrix readable for 40+ classes: row-normalised colour, counts in every non-zero cell."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    classes = len(labels)
    cell = 0.32  # inches per class
    side = max(6.0, classes * cell + 3.5)
    figure = Figure(figsize=(side, side), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((2.6 / side, 2.6 / side, (side - 3.3) / side, (side - 3.3) / side))
    totals = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape, dtype=np.float64), where=totals > 0)
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    font = 8 if classes <= 60 else 6
    short = [label if len(label) <= 24 else label[:23] + "\N{HORIZONTAL ELLIPSIS}" for label in labels]
    axes.set_xticks(range(classes), short, rotation=90, fontsize=font)
    axes.set_yticks(range(classes), short, fontsize=font)
    axes.set_xlabel("predicted", fontsize=font + 2)
    axes.set_ylabel("true character", fontsize=font + 2)
    axes.set_xticks(np.arange(-0.5, classes, 1), minor=True)
    axes.set_yticks(np.arange(-0.5, classes, 1), minor=True)
    axes.grid(which="minor", color="#dddddd", linewidth=0.4)
    axes.tick_params(which="minor", length=0)
    for row in range(classes):
        for column in range(classes):
            count = confusion[row, column]
            if count:
                dark = shares[row, column] > 0.55
                axes.text(column, row, str(count), ha="center", va="center", fontsize=font - 1,
                          color="white" if dark else ("#b00000" if row != column else "black"))
    if title:
        axes.set_title(f"Confusion matrix: {title}", fontsize=font + 3)
    figure.savefig(os.fspath(path), format="png")


def plot_threshold(threshold: dict, path: str | os.PathLike) -> None:
    """Two panels: accuracy against coverage as the threshold moves, and every rate against the threshold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = threshold["curve"]
    figure = Figure(figsize=(12, 5), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    points = [(p["known_coverage"], p["known_accuracy"], p["threshold"]) for p in curve
              if p["known_coverage"] is not None and p["known_accuracy"] is not None]
    if points:
        left.plot([p[0] for p in points], [p[1] for p in points], color="tab:blue")
        for target in (threshold.get("current"), threshold.get("recommended")):
            if target is None:
                continue
            nearest = min(points, key=lambda p: abs(p[2] - target))
            left.scatter([nearest[0]], [nearest[1]], zorder=3)
            left.annotate(f"t={target:.2f}", (nearest[0], nearest[1]), textcoords="offset points", xytext=(5, -12))
    left.set_xlabel("coverage: share of known faces named")
    left.set_ylabel("accuracy of the names given")
    left.set_title("Known characters: accuracy vs coverage")
    left.grid(alpha=0.3)
    xs = [p["threshold"] for p in curve]
    for key, label in (("known_coverage", "known faces named"), ("known_correct", "known faces named right"),
                       ("unknown_rejected", "unknown faces rejected"), ("balanced", "balanced")):
        ys = [p.get(key) for p in curve]
        if any(y is not None for y in ys):
            right.plot(xs, [np.nan if y is None else y for y in ys], label=label)
    for key, style in (("current", ":"), ("recommended", "--")):
        if threshold.get(key) is not None:
            right.axvline(threshold[key], linestyle=style, color="grey", label=f"{key} {threshold[key]:.2f}")
    right.set_xlabel("\"unknown\" threshold on the best probability")
    right.set_ylim(0, 1.02)
    right.set_title("Rates against the threshold")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    figure.savefig(os.fspath(path), format="png")
