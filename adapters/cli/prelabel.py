"""`aniface prelabel CROPS_DIR --model DIR --out SORTED_DIR`: a model sorts face crops for a person to check.

Crops go to `<guess>/` folders, or `_unsure/` below the confidence threshold; inside each folder the
least confident come first (file names start with a rank), and `review.csv` lists every crop, least
confident first. Once checked, SORTED_DIR feeds `aniface train` as it is.
"""

from __future__ import annotations

import argparse
import os
import sys

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE
from bot.terminal import note, print_summary, printable


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "prelabel", help="sort face crops into character folders with a model, for checking",
        description="Name every crop in CROPS_DIR with the model and copy it into SORTED_DIR/<character>/, or "
                    "SORTED_DIR/_unsure/ when the best guess is below the threshold. File names start with a "
                    "rank and the probability, least confident first, so the likeliest mistakes are seen "
                    "first; SORTED_DIR/review.csv lists them all. After checking, run "
                    "`aniface train SORTED_DIR --out MODEL_DIR` (folders starting with '_' are ignored).")
    parser.add_argument("crops", metavar="CROPS_DIR", help="folder of face crops (e.g. from aniface harvest)")
    parser.add_argument("--model", metavar="DIR|hf://OWNER/NAME[@REV]", default=os.environ.get("ANIFACE_MODEL"),
                        help="model directory (default: $ANIFACE_MODEL)")
    parser.add_argument("--out", metavar="SORTED_DIR", required=True, help="new (or empty) folder for the sorted crops")
    parser.add_argument("--threshold", type=float, default=None, metavar="P",
                        help="best probability below which a crop goes to _unsure/ (default: the model's "
                             "unknown threshold)")
    parser.add_argument("--move", action="store_true", help="move the crops instead of copying them")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="crops per backbone call (default: 32)")
    parser.add_argument("--backbone-weights", metavar="PATH", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"),
                        help="local Inception-v3 weights file, for models whose backbone uses one "
                             "(default: $ANIFACE_BACKBONE_WEIGHTS)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recognizer import ModelError, Recognizer
    from recognizer.hub.fetch import model_folder
    from recognizer.training.prelabel import PrelabelError, prelabel

    if not args.model:
        print("aniface: prelabel needs a model: give one with --model DIR (or set $ANIFACE_MODEL)", file=sys.stderr)
        return EXIT_USAGE
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print("aniface: --threshold must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    if args.batch_size < 1:
        print("aniface: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not os.path.isdir(args.crops):
        print(f"aniface: {printable(args.crops)}: no such folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        recognizer = Recognizer.load(model_folder(args.model), backbone_weights=args.backbone_weights)
    except (ModelError, OSError, ValueError) as error:  # ValueError: a malformed hf:// reference
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE

    try:
        report = prelabel(args.crops, recognizer, args.out, threshold=args.threshold, move=args.move,
                          batch_size=args.batch_size, progress=not args.quiet and not args.json, on_message=note)
    except PrelabelError as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE

    print_summary(report.summary(), args.json, _human_summary)
    return EXIT_FAILED if report.failures else EXIT_OK


def _human_summary(summary: dict) -> str:
    verb = "moved" if summary["moved"] else "copied"
    lines = [f"{summary['crops']} crops {verb} into {summary['out_dir']} "
             f"({summary['unsure']} unsure, below {summary['threshold']:.2f})"]
    for folder, count in summary["folders"].items():
        lines.append(f"  {printable(folder)}/: {count}")
    if summary["duplicates"]:
        count = summary["duplicates"]
        lines.append(f"  {count} file{'s' if count != 1 else ''} with the same bytes as another left out")
    for failure in summary["failed"]:
        lines.append(f"  unreadable: {printable(failure['file'])}: {failure['error']}")
    lines.append(f"  review: {summary['review']} (least confident first); when checked: "
                 f"aniface train {summary['out_dir']} --out MODEL_DIR")
    return "\n".join(lines)
