"""The detector options that `identify` and `evaluate --scenes` share, and the settings they make.

No recognizer import at module level: it would slow every `aniface` command's start by a quarter second.
What the options leave unsaid comes from the one Settings that `aniface` loaded (`args.settings`:
ANIFACE_DETECTOR_SCAN, ANIFACE_DETECT_MAX_SIDE, or the TOML file), as `aniface serve` uses them.
"""

from __future__ import annotations

import argparse


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """--detector, --cascade, --scan and --detect-max-side, as `aniface identify` has them."""
    parser.add_argument("--detector", choices=("animeface", "lbpcascade"), default="animeface",
                        help="face detector (default: animeface-2009)")
    parser.add_argument("--cascade", metavar="PATH", help="lbpcascade_animeface.xml, for --detector lbpcascade")
    parser.add_argument("--scan", choices=("fast", "thorough"), default=None,
                        help="animeface's scan: thorough (default, its own) or fast (~2.3x faster, "
                             "~3 points less recall)")
    parser.add_argument("--detect-max-side", type=int, metavar="PIXELS", default=None,
                        help="look for faces on a copy shrunk to this long side, for speed and memory on big "
                             "images (default: $ANIFACE_DETECT_MAX_SIDE, else 2048; 0: full size)")


def recognizer_settings(args: argparse.Namespace):  # -> RecognizerSettings | str
    """The RecognizerSettings the detector options describe, or a message saying what is wrong with them."""
    from recognizer import RecognizerSettings

    detect_max_side = detect_max_side_setting(args.detect_max_side, args.settings.detect_max_side)
    if isinstance(detect_max_side, str):
        return detect_max_side
    return RecognizerSettings(detector=args.detector, cascade_path=args.cascade,
                              scan=args.scan or args.settings.detector_scan, detect_max_side=detect_max_side)


def detect_max_side_setting(given: int | None, configured: int) -> int | None | str:
    """The long side to detect at (None: full size) from the option, else the settings' (already validated)
    ANIFACE_DETECT_MAX_SIDE; or what is wrong with the option."""
    from recognizer.detect import MIN_DETECT_MAX_SIDE

    if given is None:
        return configured or None
    if given != 0 and given < MIN_DETECT_MAX_SIDE:
        return f"--detect-max-side must be 0 (full size) or at least {MIN_DETECT_MAX_SIDE} pixels"
    return given or None
