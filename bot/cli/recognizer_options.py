"""The detector options that `identify` and `evaluate --scenes` share, and the settings they make.

No recognizer import at module level: it would slow every `aniface` command's start by a quarter second.
"""

from __future__ import annotations

import argparse
import os

from bot.terminal import printable


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """--detector, --cascade, --scan and --detect-max-side, as `aniface identify` has them."""
    parser.add_argument("--detector", choices=("animeface", "lbpcascade"), default="animeface",
                        help="face detector (default: animeface-2009)")
    parser.add_argument("--cascade", metavar="PATH", help="lbpcascade_animeface.xml, for --detector lbpcascade")
    parser.add_argument("--scan", choices=("fast", "thorough"), default=os.environ.get("ANIFACE_DETECTOR_SCAN", "thorough"),
                        help="animeface's scan: thorough (default, its own) or fast (~2.3x faster, "
                             "~3 points less recall)")
    parser.add_argument("--detect-max-side", type=int, metavar="PIXELS", default=None,
                        help="look for faces on a copy shrunk to this long side, for speed and memory on big "
                             "images (default: $ANIFACE_DETECT_MAX_SIDE, else 2048; 0: full size)")


def recognizer_settings(args: argparse.Namespace):  # -> RecognizerSettings | str
    """The RecognizerSettings the detector options describe, or a message saying what is wrong with them."""
    from recognizer import RecognizerSettings

    detect_max_side = detect_max_side_setting(args.detect_max_side)
    if isinstance(detect_max_side, str):
        return detect_max_side
    return RecognizerSettings(detector=args.detector, cascade_path=args.cascade, scan=args.scan,
                              detect_max_side=detect_max_side)


def detect_max_side_setting(given: int | None) -> int | None | str:
    """The long side to detect at (None: full size) from the option, else the environment; or what is wrong."""
    from recognizer.detect import DEFAULT_DETECT_MAX_SIDE, MIN_DETECT_MAX_SIDE

    source, value = "--detect-max-side", given
    if value is None:
        source, text = "ANIFACE_DETECT_MAX_SIDE", os.environ.get("ANIFACE_DETECT_MAX_SIDE", "").strip()
        try:
            value = int(text) if text else DEFAULT_DETECT_MAX_SIDE
        except ValueError:
            return f"{source} must be a whole number of pixels, not {printable(text)!r}"
    if value != 0 and value < MIN_DETECT_MAX_SIDE:
        return f"{source} must be 0 (full size) or at least {MIN_DETECT_MAX_SIDE} pixels"
    return value or None
