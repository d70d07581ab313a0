"""`aniface harvest VIDEO_OR_FOLDER... --out CROPS_DIR`: face crops for a dataset, from episodes and pictures.

Frames are taken from videos every few seconds (any format FFmpeg reads; no ffmpeg binary needed),
images from folders; every face is cut out with the detector's margin, near-duplicates are dropped,
and `CROPS_DIR/manifest.csv` says where each crop came from. Running the same command again continues
where it stopped. Sort the crops with `aniface prelabel`, check them, then `aniface train`.
"""

from __future__ import annotations

import argparse
import re
import sys

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED
from bot.terminal import note, print_summary, printable


_UNITS = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "sec": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|min|sec|h|m|s)", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds from "5s", "5", "0.5s", "500ms", "2m", "1m30s", "1h" or "01:30" / "0:01:30"; ValueError otherwise."""
    value = text.strip().lower()
    if not value:
        raise ValueError("empty duration")
    if ":" in value:
        parts = value.split(":")
        if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d*)?", p) for p in parts):
            raise ValueError(f"not a duration: {text!r}")
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
        return seconds
    if re.fullmatch(r"\d+(\.\d*)?|\.\d+", value):
        return float(value)
    position, seconds = 0, 0.0
    compact = value.replace(" ", "")
    for match in _PART.finditer(compact):
        if match.start() != position:
            raise ValueError(f"not a duration: {text!r}")
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(compact) or position == 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 5s, 500ms, 1m30s)")
    return seconds


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the interval must be longer than 0 seconds")
    return seconds


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "harvest", help="cut face crops out of videos and image folders, for a dataset",
        description="Take a frame every --every seconds from each video (any format FFmpeg reads) and every "
                    "image from each folder, find the faces, and save each face (with the detector's margin) "
                    "as CROPS_DIR/<sha256>.png. Near-duplicates are dropped; CROPS_DIR/manifest.csv records "
                    "each crop's source, timestamp and box. Run the same command again to continue after an "
                    "interruption: finished sources are skipped, a video resumes at its last checkpoint.")
    parser.add_argument("sources", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files, image files or folders")
    parser.add_argument("--out", metavar="CROPS_DIR", required=True, help="where crops and manifest.csv go")
    parser.add_argument("--every", type=_duration, default=5.0, metavar="DURATION",
                        help="time between sampled video frames, e.g. 5s, 500ms, 1m (default: 5s)")
    parser.add_argument("--max-side", type=int, default=960, metavar="PX",
                        help="pictures are shrunk to this long side before faces are found and cut out, as the "
                             "seed's 960x540 frames were; 0 keeps them as they are (default: 960)")
    parser.add_argument("--margin", type=float, default=0.3,
                        help="crop margin, a share of the face box on every side (default: 0.3)")
    parser.add_argument("--hash", dest="hash_method", choices=("dhash", "phash"), default="dhash",
                        help="perceptual hash for near-duplicates (default: dhash)")
    parser.add_argument("--max-distance", type=int, default=4, metavar="BITS",
                        help="crops within this Hamming distance of a kept one are dropped; 0 drops only "
                             "identical hashes (default: 4)")
    parser.add_argument("--detector", choices=("animeface", "lbpcascade"), default="animeface",
                        help="face detector (default: animeface-2009)")
    parser.add_argument("--cascade", metavar="PATH", help="lbpcascade_animeface.xml, for --detector lbpcascade")
    parser.add_argument("--scan", choices=("thorough", "fast"), default="thorough",
                        help="animeface-2009 scan density: thorough is its own, the seed's; fast checks fewer "
                             "windows and misses more faces (default: thorough)")
    parser.add_argument("--min-likelihood", type=float, default=0.7,
                        help="animeface-2009 likelihood a face needs (default: 0.7, the seed's)")
    parser.add_argument("--checkpoint", type=_duration, default=10.0, metavar="DURATION",
                        help="how often progress within a video is saved for a resume (default: 10s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError
    from recognizer.training.harvest import HarvestError, HarvestSettings, Harvester

    if args.max_side < 0:
        print("aniface: --max-side must be 0 (no shrinking) or a number of pixels", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = HarvestSettings(every=args.every, max_side=args.max_side or None, margin=args.margin,
                                   hash_method=args.hash_method, max_distance=args.max_distance,
                                   checkpoint_seconds=args.checkpoint)
        from recognizer.detect import make_detector

        detector = make_detector(args.detector, args.cascade, args.min_likelihood, scan=args.scan)
    except (HarvestError, ModelError) as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE

    harvester = Harvester(args.out, settings, detector=detector, on_message=note)
    try:
        report = harvester.run(args.sources, progress=not args.quiet and not args.json)
    except HarvestError as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\naniface: interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return EXIT_INTERRUPTED

    print_summary(report.summary(), args.json, _human_summary)
    return EXIT_FAILED if report.failures else EXIT_OK


def _human_summary(summary: dict) -> str:
    lines = [
        f"{summary['crops']} new crops in {summary['out_dir']} "
        f"({summary['faces']} faces in {summary['frames']} pictures, {summary['duplicates']} duplicates dropped)",
        f"  sources: {summary['done']} read, {summary['skipped']} already done, {summary['failed']} failed",
    ]
    for failure in summary["failures"]:
        lines.append(f"  failed: {printable(failure['source'])}: {failure['error']}")
    lines.append(f"  provenance: {summary['out_dir']}/manifest.csv; next: aniface prelabel {summary['out_dir']} "
                 "--model DIR --out SORTED_DIR")
    return "\n".join(lines)
