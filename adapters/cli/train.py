"""`aniface train DATASET... --out MODEL_DIR`: fit a model on labelled face crops.

Backbone features are cached on disk (one forward pass per new image and augmentation variant), so a
second run on the same data only fits the head.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train a model on labelled face crops",
        description="Train a model on face crops: each DATASET is a folder of character folders (ImageFolder) "
                    "or a zip exported by the bot; several are merged by character name. Backbone features "
                    "are cached, so re-running on the same images only fits the head.")
    parser.add_argument("datasets", nargs="+", metavar="DATASET", help="ImageFolder directory or exported zip")
    parser.add_argument("--out", metavar="MODEL_DIR", required=True, help="where the model directory is written")
    parser.add_argument("--backbone-weights", metavar="PATH", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"),
                        help="local Inception-v3 weights file (.h5) instead of Keras' ImageNet download "
                             "(default: $ANIFACE_BACKBONE_WEIGHTS)")
    parser.add_argument("--feature-layer", metavar="NAME", action="append", dest="feature_layers",
                        help="Inception-v3 layer(s) to pool features from; repeat or separate with commas "
                             "(default: mixed3,mixed4,mixed5,mixed6)")
    parser.add_argument("--pooling", choices=("avg", "avgmax"), default="avg",
                        help="global pooling of each layer (default: avg)")
    parser.add_argument("--input-size", type=int, default=None, metavar="PX",
                        help="side of the square the backbone sees (default: 160)")
    parser.add_argument("--face-resolution", type=int, default=None, metavar="PX",
                        help="crops are shrunk to this long side before the backbone, in training and serving "
                             "alike, so that every source looks alike; 0 keeps them as they are (default: 112)")
    parser.add_argument("--no-colour-histogram", dest="colour_histogram", action="store_false",
                        help="do not append a colour histogram of each crop to its features")
    parser.add_argument("--recut", action="store_true",
                        help="cut each training crop again the way serving cuts faces (the detector's box in it, "
                             "grown by the model's margin; the crop as it is where no face is found)")
    parser.add_argument("--no-verifier", dest="verifier", action="store_false",
                        help="fit no face verifier (the model then only answers on faces the detector is sure of)")
    parser.add_argument("--preprocessing", choices=("inception", "unit"), default=None,
                        help="pixel scaling the weights expect: inception = [-1, 1] (Keras' ImageNet weights), "
                             "unit = [0, 1] (default: inception, or unit with --backbone-weights)")
    parser.add_argument("--augment", choices=("none", "flip", "sources", "sources2", "full"), default="sources",
                        help="augmented copies of training images: flip = mirror; sources = mirror plus a copy "
                             "as another source might have made it (margin, resolution, blur, JPEG); sources2 = "
                             "two such copies; full = mirror, tighter crop and small rotations; colours are "
                             "never changed (default: sources)")
    parser.add_argument("--no-augment", dest="augment", action="store_const", const="none",
                        help="same as --augment none")
    parser.add_argument("--head", choices=("lda", "logistic"), default="lda",
                        help="lda: shrinkage linear discriminant analysis, closed form, shrinkage picked on "
                             "validation (default); logistic: softmax regression by Adam with early stopping")
    parser.add_argument("--power", type=float, default=0.5,
                        help="power normalisation of the features, sign(f)|f|^POWER, before the head; 1 turns it "
                             "off (default: 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the head's training (default: 0)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of each class for validation")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share of each class held out for testing")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="feature cache (default: $ANIFACE_CACHE_DIR or the user cache folder)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write cached features")
    parser.add_argument("--precision", choices=("float32", "float16", "int8"), default=None,
                        help="precision of the backbone converted to LiteRT for serving (default: the measured "
                             "default, see docs/litert.md; `aniface model convert` converts again)")
    parser.add_argument("--no-convert", dest="convert", action="store_false",
                        help="write no LiteRT backbone: the model is then served on TensorFlow")
    parser.add_argument("--name", default="aniface", help="model name recorded in the manifest")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(run=run)


def spec_from_args(args: argparse.Namespace):
    """The BackboneSpec the options describe (shared with `evaluate`)."""
    from recognizer.backbone import file_sha256
    from recognizer.training.train import DEFAULT_FACE_RESOLUTION, DEFAULT_INPUT_SIZE, DEFAULT_LAYERS, default_spec

    layers = tuple(part.strip() for value in (args.feature_layers or []) for part in value.split(",") if part.strip())
    if args.backbone_weights:
        weights, digest = "file", file_sha256(args.backbone_weights)
    else:
        weights, digest = "imagenet", None
    preprocessing = args.preprocessing or ("unit" if weights == "file" else "inception")
    resolution = DEFAULT_FACE_RESOLUTION if args.face_resolution is None else (args.face_resolution or None)
    return default_spec(weights=weights, weights_sha256=digest, input_size=args.input_size or DEFAULT_INPUT_SIZE,
                        feature_layers=layers or DEFAULT_LAYERS, pooling=args.pooling, preprocessing=preprocessing,
                        face_resolution=resolution, colour_histogram=args.colour_histogram)


def run(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError
    from recognizer.model import save_model
    from recognizer.training.dataset import DatasetError, load_datasets
    from recognizer.training.feature_cache import FeatureCache
    from recognizer.training.train import TrainConfig, train

    say = (lambda message: print(message, file=sys.stderr, flush=True)) if not args.json else (lambda m: None)
    if args.backbone_weights and not os.path.isfile(args.backbone_weights):
        print(f"aniface: backbone weights file not found: {args.backbone_weights}", file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = spec_from_args(args)
        config = TrainConfig(spec=spec, augmentation=args.augment, seed=args.seed, val_fraction=args.val_fraction,
                             test_fraction=args.test_fraction, head=args.head, power=args.power,
                             recut=args.recut, verifier=args.verifier, model_name=args.name)
        started = time.perf_counter()
        dataset = load_datasets(args.datasets)
    except (ModelError, DatasetError, ValueError, OSError) as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE
    say(f"dataset: {len(dataset.samples)} images of {len(dataset.classes)} characters"
        + (f" ({len(dataset.skipped)} files skipped)" if dataset.skipped else ""))
    cache = None if args.no_cache else FeatureCache(args.cache_dir)
    try:
        result = train(dataset, config, cache=cache, weights_path=args.backbone_weights,
                       progress=not args.quiet and not args.json, on_message=say)
    except (ModelError, ValueError) as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_FAILED
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split_path = out / "split.json"
    temporary = split_path.with_name(split_path.name + ".tmp")
    temporary.write_text(json.dumps({"seed": config.seed, **result.split}, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, split_path)
    result.manifest.metrics["timings"] = {k: round(v, 2) for k, v in result.timings.items()}
    save_model(out, result.manifest, result.head, result.verifier, result.exemplars)
    converted = None
    # A random-weights backbone (tests) is not carried by the model, so there is nothing to convert.
    if args.convert and result.manifest.backbone.weights != "random":
        from recognizer.training.convert import DEFAULT_PRECISION, convert_model

        say("converting the backbone to LiteRT for serving")
        try:
            converted = convert_model(out, args.precision or DEFAULT_PRECISION, args.backbone_weights)
        except ModelError as error:
            print(f"aniface: the model is written, but its backbone was not converted: {error}", file=sys.stderr)
            return EXIT_FAILED
    elapsed = time.perf_counter() - started

    summary = {
        "model_dir": str(out),
        "version": result.manifest.version,
        "images": len(dataset.samples),
        "classes": len(dataset.classes),
        "split": {part: len(hashes) for part, hashes in result.split.items()},
        "val": result.metrics["val"],
        "test": result.metrics["test"],
        "unknown_threshold": result.manifest.unknown_threshold,
        "features": {"computed": result.extraction["computed"], "cached": result.extraction["cached"]},
        "recut": {"recut": result.extraction["recut"], "kept_as_is": result.extraction["kept_as_is"]},
        "verifier": result.metrics.get("verifier"),
        "converted_backbone": converted,
        "seconds": round(elapsed, 1),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(_human_summary(summary, result))
    return EXIT_OK


def _pct(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"


def _human_summary(summary: dict, result) -> str:
    head = result.metrics["head"]
    split = summary["split"]
    if head["fit"] == "lda":
        fitted = f"shrinkage LDA (shrinkage {head['shrinkage']:g})"
    else:
        fitted = f"logistic regression (L2 {head['l2']:g}, best epoch {head['best_epoch']} of {head['epochs']})"
    lines = [
        f"Model written to {summary['model_dir']} (version {summary['version']})",
        f"  images: {summary['images']} of {summary['classes']} characters; split train {split['train']} / "
        f"validation {split['val']} / test {split['test']}",
        f"  features: {summary['features']['computed']} computed, {summary['features']['cached']} from the cache",
        f"  head: {fitted} on features^{head['power']:g}, temperature {head['temperature']:.2f}",
        f"  validation: top-1 {_pct(summary['val']['top1'])}, top-5 {_pct(summary['val']['top5'])} "
        f"({summary['val']['images']} images)",
        f"  test:       top-1 {_pct(summary['test']['top1'])}, top-5 {_pct(summary['test']['top5'])} "
        f"({summary['test']['images']} images)",
        f"  unknown threshold: {summary['unknown_threshold']:.3f} ({result.metrics['unknown_threshold_rule']})",
        *([f"  crops cut again the way serving cuts faces: {summary['recut']['recut']}, "
           f"used as they were (no face found in them): {summary['recut']['kept_as_is']}"]
          if sum(summary["recut"].values()) else []),
        *([f"  face verifier: keeps {summary['verifier']['keeps_validation_faces']:.0%} of validation faces, "
           "rejects " + ", ".join(f"{share:.1%} of {name.replace('not_face_', '')}"
                                  for name, share in summary['verifier']['rejects_training_not_faces'].items())
           + " of the training crops' non-face windows"] if summary["verifier"] else []),
        *([f"  backbone converted to LiteRT ({summary['converted_backbone']['precision']}, "
           f"{summary['converted_backbone']['bytes'] / 1e6:.1f} MB): served without TensorFlow"]
          if summary["converted_backbone"] else []),
        f"  took {summary['seconds']:.1f} s",
    ]
    return "\n".join(lines)
