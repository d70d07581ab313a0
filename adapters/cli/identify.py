"""`aniface identify IMAGE...`: every face in each image, numbered, with its top-5 names."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import unicodedata
from pathlib import Path

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE
from adapters.cli.recognizer_options import add_detector_options, recognizer_settings
from bot.terminal import printable


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "identify", help="name the characters in image files",
        description="Find every anime face in each image, name it with its top-5 guesses and write an "
                    "annotated PNG. Without --model, faces are found and annotated but not named.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format a chat sends)")
    parser.add_argument("--model", metavar="DIR|hf://OWNER/NAME[@REV]", default=os.environ.get("ANIFACE_MODEL"),
                        help="model directory, or a model shared on the Hugging Face Hub (default: $ANIFACE_MODEL)")
    parser.add_argument("--out", metavar="DIR", default="annotated",
                        help="where annotated PNGs go (default: ./annotated)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image, one per line")
    parser.add_argument("--backbone-weights", metavar="PATH", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"),
                        help="local Inception-v3 weights file, for models whose backbone uses one "
                             "(default: $ANIFACE_BACKBONE_WEIGHTS)")
    add_detector_options(parser)
    parser.add_argument("--no-annotate", action="store_true", help="do not write annotated PNGs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recognizer import ImageRejected, ModelError, Recognizer
    from recognizer.hub.fetch import open_model
    from recognizer.hub.reference import ReferenceError

    settings = recognizer_settings(args)
    if isinstance(settings, str):
        print(f"aniface: {settings}", file=sys.stderr)
        return EXIT_USAGE
    try:
        model = open_model(args.model) if args.model else None
        recognizer = Recognizer(model, settings=settings, backbone_weights=args.backbone_weights)
    except (ModelError, ReferenceError) as error:
        print(f"aniface: {error}", file=sys.stderr)
        return EXIT_USAGE

    out_dir = None if args.no_annotate else Path(args.out)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    if model is None and not args.json:
        print("No model given (--model DIR): finding faces only; naming them needs a model.\n")

    failures = 0
    used_names: set[str] = set()
    for image_path in args.images:
        try:
            image = recognizer.read(image_path)
            faces = recognizer.identify(image)
            annotated_path = None
            if out_dir is not None:
                annotated_path = out_dir / _output_name(image_path, used_names)
                annotated_path.write_bytes(recognizer.annotate(image, faces))
        except (ImageRejected, OSError) as error:
            failures += 1
            message = error.user_message if isinstance(error, ImageRejected) else _os_error_message(error)
            _report_failure(image_path, message, args.json)
            continue
        except Exception as error:  # a bug: logged with its traceback, and the batch goes on
            failures += 1
            logging.getLogger("aniface.identify").error("identify failed on %s", _shown(image_path), exc_info=True)
            _report_failure(image_path, f"internal error ({type(error).__name__}); the others are still done",
                            args.json)
            continue
        if args.json:
            print(json.dumps(_as_json(image_path, faces, annotated_path, recognizer.model_version,
                                              recognizer.model_revision),
                             ensure_ascii=False), flush=True)
        else:
            _print_human(image_path, faces, annotated_path, named=model is not None)
    return EXIT_FAILED if failures else EXIT_OK


def _os_error_message(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "this is a folder, not an image"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or "cannot read this file"


def _report_failure(image_path: str, message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"image": _shown(image_path), "error": message, "faces": []}, ensure_ascii=False),
              flush=True)
    print(f"aniface: {printable(_shown(image_path))}: {message}", file=sys.stderr, flush=True)


def _shown(image_path: str) -> str:
    """The path as text that can be printed and written as UTF-8: bytes of a file name that are not valid
    UTF-8 (surrogate-escaped by Python) are shown as \\xNN."""
    return os.fsencode(image_path).decode("utf-8", "backslashreplace")


def _as_json(image_path: str, faces, annotated_path: Path | None, model_version: str | None,
             model_revision: str | None = None) -> dict:
    return {
        "image": _shown(image_path),
        "model_version": model_version,
        "model_revision": model_revision,
        "annotated": str(annotated_path) if annotated_path else None,
        "faces": [face.to_dict() for face in faces],
    }


def _print_human(image_path: str, faces, annotated_path: Path | None, named: bool) -> None:
    guessed = len(faces) == 1 and faces[0].guessed
    count = "no face found for sure" if guessed else f"{len(faces)} face" + ("" if len(faces) == 1 else "s")
    print(f"{printable(_shown(image_path))}: {count}" + (f" (annotated: {annotated_path})" if annotated_path else ""))
    if not faces:
        print("  no face found")
    if guessed:
        print("  a guess at the likeliest place for one:")
    for face in faces:
        box = face.box
        where = f"at x={box.x} y={box.y} w={box.w} h={box.h}"
        if not named:
            print(f"  {face.number}. {where}")
            continue
        guesses = ", ".join(f"{c.name} {c.probability:.1%}" for c in face.candidates)
        verdict = ("guess" if face.guessed else "not sure (found by the last look: the box is approximate)"
                   if face.approximate else face.name if face.name else "unknown")
        print(f"  {face.number}. {verdict}  {where}\n     top 5: {guesses}")
    print()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _output_name(image_path: str, used: set[str]) -> str:
    """A safe, unique file name for an input's annotated PNG (never trusts the input's name)."""
    stem = unicodedata.normalize("NFKD", Path(image_path).stem).encode("ascii", "ignore").decode()
    stem = _UNSAFE.sub("_", stem).strip("._-")[:80] or hashlib.sha256(os.fsencode(image_path)).hexdigest()[:12]
    name, counter = f"{stem}.annotated.png", 2
    while name in used:
        name, counter = f"{stem}-{counter}.annotated.png", counter + 1
    used.add(name)
    return name
