"""`aniface model convert MODEL_DIR [--precision float32|float16|int8]`: write the model's backbone into its
directory as a LiteRT file, so that serving it needs neither TensorFlow nor a weights file. `pull`, `push` and
`info` (models shared on the Hugging Face Hub) are `adapters.cli.model_share`'s."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from adapters.cli import model_share
from adapters.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

PRECISIONS = ("float32", "float16", "int8")  # recognizer.training.convert's; named here so --help needs no TF


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("model", help="work on a model (convert it for serving; pull, push, info: share it on the Hub)")
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    convert = actions.add_parser(
        "convert", help="convert the model's backbone to LiteRT (serving then needs no TensorFlow)",
        description="Write the backbone, up to its deepest feature layer, into MODEL_DIR as backbone.tflite and "
                    "name it (precision, checksum) in the manifest. aniface serve, identify and prelabel then run "
                    "it on LiteRT; the directory is self-contained (no weights file, no download).")
    convert.add_argument("model", metavar="MODEL_DIR", help="model directory (from aniface train)")
    convert.add_argument("--precision", choices=PRECISIONS, default=None,
                         help="float32: as trained; float16: half the file; int8: dynamic-range quantised, the "
                              "fastest (default: the measured default, see docs/litert.md)")
    convert.add_argument("--out", metavar="DIR", default=None,
                         help="convert a copy of the model written here instead of MODEL_DIR itself")
    convert.add_argument("--backbone-weights", metavar="PATH", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"),
                         help="the local Inception-v3 weights file the model was trained with, for models whose "
                              "backbone uses one (default: $ANIFACE_BACKBONE_WEIGHTS)")
    convert.add_argument("--json", action="store_true", help="print the manifest's record as JSON")
    convert.set_defaults(run=run_convert)
    model_share.register(actions)


def run_convert(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError
    from recognizer.training.convert import DEFAULT_PRECISION, convert_model

    target = Path(args.model)
    if args.out:
        if Path(args.out).exists():
            print(f"aniface model convert: {args.out} already exists", file=sys.stderr)
            return EXIT_USAGE
        if not (target / "manifest.json").is_file():
            print(f"aniface model convert: {target} is not a model directory", file=sys.stderr)
            return EXIT_USAGE
        shutil.copytree(target, args.out)
        target = Path(args.out)
    started = time.perf_counter()
    try:
        record = convert_model(target, args.precision or DEFAULT_PRECISION, args.backbone_weights)
    except ModelError as error:
        print(f"aniface model convert: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"model_dir": str(target), **record}))
    else:
        print(f"{target}: backbone converted to LiteRT, {record['precision']}, {record['bytes'] / 1e6:.1f} MB "
              f"in {time.perf_counter() - started:.1f} s; served without TensorFlow from now on")
    return EXIT_OK
