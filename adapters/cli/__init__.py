"""The `aniface` command: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from bot.cli import db, evaluate, export, harvest, identify, prelabel, serve, train

SUBCOMMANDS = (serve, identify, train, evaluate, export, db, harvest, prelabel)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aniface", description="Names anime characters in screenshots, illustrations and stickers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter is noise for a command-line user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
