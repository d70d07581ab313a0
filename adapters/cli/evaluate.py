"""`aniface evaluate MODEL_DIR [DATASET...] [--scenes DIR] [--out REPORT_DIR]`: how well a model names
labelled face crops, and whole pictures as people post them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE
from adapters.cli.recognizer_options import add_detector_options, recognizer_settings
from bot.terminal import note, printable


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate", help="measure a model on labelled face crops and/or whole pictures",
        description="On face crops (DATASET): top-1/top-5 accuracy overall and per character, precision and "
                    "recall, the most confused pairs, a confusion matrix (PNG) and, when a DATASET holds "
                    "characters the model does not know, the coverage/accuracy curve of the 'unknown' threshold "
                    "and the threshold to use. Images the model was trained or validated on are left out (see "
                    "--include-training). On whole pictures (--scenes DIR, a folder with a manifest.csv): "
                    "what the bot would answer to each picture, whether a face was found and the right "
                    "character named, open-set pictures given a name, detection recall and precision, times.")
    parser.add_argument("model", metavar="MODEL", help="model directory (from aniface train) or hf://OWNER/NAME[@REV]")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help="ImageFolder directory or exported zip of face crops; characters the model does not "
                             "know count as 'unknown' faces (optional with --scenes)")
    parser.add_argument("--scenes", metavar="DIR", default=None,
                        help="also (or only) evaluate whole pictures: DIR/manifest.csv lists them (columns file, "
                             "kind, known_characters, optionally gt_face_boxes_xywh; see the README)")
    parser.add_argument("--out", metavar="REPORT_DIR", default=None,
                        help="write report.json, report.md, confusion.png and threshold.png here (crops); with "
                             "--scenes, report.json, report.md and misses.png (in REPORT_DIR/scenes when a "
                             "DATASET is given too)")
    parser.add_argument("--json", action="store_true",
                        help="print the JSON report on stdout (one object; {\"crops\": ..., \"scenes\": ...} "
                             "when both are evaluated)")
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
    add_detector_options(parser.add_argument_group("face detection (with --scenes; as aniface identify)"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.datasets and not args.scenes:
        print("aniface: evaluate: give DATASET... (face crops), --scenes DIR (whole pictures) or both",
              file=sys.stderr)
        return EXIT_USAGE
    if args.apply_threshold and not args.datasets:
        print("aniface: --apply-threshold needs a DATASET of face crops", file=sys.stderr)
        return EXIT_USAGE
    from recognizer.errors import ModelError
    from recognizer.hub.fetch import model_folder
    from recognizer.hub.reference import is_hub_reference

    if args.apply_threshold and is_hub_reference(args.model):
        print("aniface: --apply-threshold writes into the model: pull a copy first (aniface model pull REF --out DIR)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        args.model = str(model_folder(args.model))
    except (ModelError, ValueError) as error:
        print(f"aniface: {printable(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    scenes_job = None
    if args.scenes:
        scenes_job = _prepare_scenes(args)
        if isinstance(scenes_job, int):
            return scenes_job
    both = bool(args.datasets and scenes_job)
    code, reports = EXIT_OK, {}
    if args.datasets:
        code, reports["crops"] = _run_crops(args, print_json=not both)
        if code == EXIT_USAGE or scenes_job is None:
            return code
        if not args.json:
            print()
    out = None
    if args.out:
        out = Path(args.out) / "scenes" if both else Path(args.out)
    scenes_code, reports["scenes"] = _run_scenes(args, *scenes_job, out, print_json=not both)
    if both and args.json:
        print(json.dumps(reports, ensure_ascii=False))
    return max(code, scenes_code)


def _run_crops(args: argparse.Namespace, print_json: bool) -> tuple[int, dict | None]:
    from recognizer.errors import ModelError
    from recognizer.model import read_model
    from recognizer.training.dataset import DatasetError, load_datasets
    from recognizer.training.evaluate import evaluate_model, read_split, write_report
    from recognizer.training.feature_cache import FeatureCache

    try:
        model = read_model(args.model)
        split = read_split(args.model)
        dataset = load_datasets(args.datasets)
    except (ModelError, DatasetError, ValueError, OSError) as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE, None
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
        return EXIT_FAILED, None
    report = evaluation.report
    if report["images"]["known"] == 0:
        print("aniface: none of the images shows a character this model knows (or all were used in training: "
              "see --include-training)", file=sys.stderr)
    if args.out:
        paths = write_report(evaluation, Path(args.out))
        if not args.json:
            print(f"Report written to {Path(args.out)}: " + ", ".join(p.name for p in paths.values()))
    if args.json:
        if print_json:
            print(json.dumps(report, ensure_ascii=False))
    else:
        print(_human_summary(report))
    if not report["images"]["known"]:
        return EXIT_FAILED, report
    if args.apply_threshold:
        return _apply_threshold(args.model, report["threshold"], args.datasets, quiet=args.json), report
    return EXIT_OK, report


def _prepare_scenes(args: argparse.Namespace):  # -> (Recognizer, SceneManifest) | exit status
    """The recognizer and the scenes, or EXIT_USAGE (said why) when options, model or manifest are unusable."""
    from recognizer import ModelError, Recognizer
    from recognizer.training.scenes import ScenesError, read_scenes

    settings = recognizer_settings(args)
    if isinstance(settings, str):
        print(f"aniface: {settings}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenes = read_scenes(args.scenes)
    except ScenesError as error:
        print(f"aniface: --scenes: {printable(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    if not scenes.scenes:
        for problem in scenes.problems:
            print(f"aniface: {printable(str(problem))}", file=sys.stderr)
        print(f"aniface: --scenes: no usable picture in {printable(args.scenes)}/manifest.csv", file=sys.stderr)
        return EXIT_USAGE
    try:
        recognizer = Recognizer.load(args.model, settings=settings, backbone_weights=args.backbone_weights)
    except (ModelError, OSError, ValueError) as error:
        print(f"aniface: {printable(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    return recognizer, scenes


def _run_scenes(args: argparse.Namespace, recognizer, scenes, out: Path | None,
                print_json: bool) -> tuple[int, dict]:
    from recognizer.training.scene_report import format_summary, write_scene_report
    from recognizer.training.scenes import evaluate_scenes

    for problem in scenes.problems:
        note(f"{problem} (row set aside)")
    evaluation = evaluate_scenes(recognizer, scenes, progress=not args.quiet and not args.json,
                                 on_error=lambda scene, message: note(f"{scene.file}: could not be read: {message}"))
    report = evaluation.report
    if out is not None:
        paths = write_scene_report(evaluation, out)
        if not args.json:
            print(f"Scenes report written to {printable(str(out))}: " + ", ".join(p.name for p in paths.values()))
    if args.json:
        if print_json:
            print(json.dumps(report, ensure_ascii=False, allow_nan=False))
    else:
        print(format_summary(report))
    failed = report["unreadable"] or report["manifest_problems"]
    return (EXIT_FAILED if failed else EXIT_OK), report


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
