"""`aniface evaluate MODEL_DIR DATASET... [--out REPORT_DIR]`: how well a model names a labelled dataset."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE
from bot.terminal import printable


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate", help="measure a model on labelled face crops",
        description="Top-1/top-5 accuracy overall and per character, precision and recall, the most confused "
                    "pairs, a confusion matrix (PNG) and, when a DATASET holds characters the model does not "
                    "know, the coverage/accuracy curve of the 'unknown' threshold and the threshold to use. "
                    "Images the model was trained or validated on are left out (see --include-training).")
    parser.add_argument("model", metavar="MODEL_DIR", help="model directory (from aniface train)")
    parser.add_argument("datasets", nargs="+", metavar="DATASET",
                        help="ImageFolder directory or exported zip; characters the model does not know count "
                             "as 'unknown' faces")
    parser.add_argument("--out", metavar="REPORT_DIR", default=None,
                        help="write report.json, report.md, confusion.png and threshold.png here")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    parser.add_argument("--backbone-weights", metavar="PATH", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"),
                        help="local Inception-v3 weights file, for models whose backbone uses one "
                             "(default: $ANIFACE_BACKBONE_WEIGHTS)")
    parser.add_argument("--apply-threshold", action="store_true",
                        help="write the recommended 'unknown' threshold into MODEL_DIR's manifest (needs a "
                             "DATASET of characters the model does not know); restart the bot to use it")
    parser.add_argument("--include-training", action="store_true",
                        help="also evaluate on images the model was trained or validated on")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of a random-weights backbone (tests only; default: the model's split seed)")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="feature cache (default: $ANIFACE_CACHE_DIR or the user cache folder)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write cached features")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recognizer.dataset import DatasetError, load_datasets
    from recognizer.errors import ModelError
    from recognizer.evaluate import evaluate_model, read_split, write_report
    from recognizer.feature_cache import FeatureCache
    from recognizer.model import read_model

    try:
        model = read_model(args.model)
        split = read_split(args.model)
        dataset = load_datasets(args.datasets)
    except (ModelError, DatasetError, ValueError, OSError) as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE
    exclude = set()
    if split and not args.include_training:
        exclude = set(split["train"]) | set(split["val"])
    seed = args.seed
    if seed is None:
        seed = int(model.manifest.dataset.get("split", {}).get("seed", 0))
    cache = None if args.no_cache else FeatureCache(args.cache_dir)
    try:
        evaluation = evaluate_model(model, dataset, exclude=exclude, cache=cache, weights_path=args.backbone_weights,
                                    seed=seed, progress=not args.quiet and not args.json)
    except ModelError as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_FAILED
    report = evaluation.report
    if report["images"]["known"] == 0:
        print("aniface: none of the images shows a character this model knows (or all were used in training: "
              "see --include-training)", file=sys.stderr)
    if args.out:
        paths = write_report(evaluation, Path(args.out))
        if not args.json:
            print(f"Report written to {Path(args.out)}: " + ", ".join(p.name for p in paths.values()))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_human_summary(report))
    if not report["images"]["known"]:
        return EXIT_FAILED
    if args.apply_threshold:
        return _apply_threshold(args.model, report["threshold"], args.datasets, quiet=args.json)
    return EXIT_OK


def _apply_threshold(model_dir: str, threshold: dict, datasets: list[str], quiet: bool) -> int:
    from datetime import date

    from recognizer.errors import ModelError
    from recognizer.model import set_unknown_threshold

    recommended = threshold.get("recommended")
    if recommended is None:
        print("aniface: --apply-threshold: no threshold to apply: " + threshold.get("note", ""), file=sys.stderr)
        return EXIT_FAILED
    rule = (f"{threshold['rule']}; from aniface evaluate on {len(datasets)} dataset"
            f"{'' if len(datasets) == 1 else 's'}, {date.today().isoformat()}")
    try:
        old = set_unknown_threshold(model_dir, recommended, rule)
    except (ModelError, OSError) as error:
        print(f"aniface: --apply-threshold: {error}", file=sys.stderr)
        return EXIT_FAILED
    message = (f"unknown threshold of {printable(model_dir)} set to {recommended:.2f} (was {old:.2f}); "
               "restart the bot to use it")
    print(message if not quiet else f"aniface: {message}", file=sys.stderr if quiet else sys.stdout)
    return EXIT_OK


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _human_summary(report: dict) -> str:
    images = report["images"]
    lines = [f"{images['known']} images of known characters, {images['unknown']} of unknown ones"
             + (f" ({images['excluded_seen_in_training']} left out: seen in training)"
                if images.get("excluded_seen_in_training") else ""),
             f"top-1 {_pct(report['top1'])}, top-5 {_pct(report['top5'])}"]
    weakest = [c for c in report["weakest_classes"] if c["recall"] is not None and c["recall"] < 1][:5]
    if weakest:
        lines.append("weakest: " + ", ".join(f"{c['name']} {_pct(c['recall'])} of {c['n']}" for c in weakest))
    if report["confused_pairs"]:
        lines.append("most confused: " + ", ".join(f"{p['a']} / {p['b']} ({p['total']})"
                                                   for p in report["confused_pairs"][:5]))
    threshold = report["threshold"]
    if threshold.get("recommended") is not None:
        at = threshold["at_recommended"]
        lines.append(f"recommended unknown threshold {threshold['recommended']:.2f} (current "
                     f"{threshold['current']:.2f}): names {_pct(at['known_coverage'])} of known faces, "
                     f"rejects {_pct(at['unknown_rejected'])} of unknown ones")
    return "\n".join(lines)
