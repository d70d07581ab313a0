"""The `aniface` command: the command-line adapter, and the composition root.

One entry point, one sub-command per job. The settings are loaded here, once (defaults, then the
TOML file from --config or ANIFACE_CONFIG, then the environment, then a sub-command's flags),
validated, and handed to the sub-command as `args.settings`: every command sees the same database,
secret and folders as `aniface serve`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from adapters.cli import (db, discord_sync, evaluate, export, harvest, identify, model, model_server, prelabel, serve,
                          telegram, train)
from adapters.cli.exit_codes import EXIT_USAGE

SUBCOMMANDS = (serve, identify, train, evaluate, model, model_server, export, db, discord_sync, telegram, harvest,
               prelabel)
CONFIG_HELP = "TOML settings file (default: ANIFACE_CONFIG); environment variables win over it"


def _add_config(parser: argparse.ArgumentParser) -> None:
    """--config on a sub-command too (`aniface db current --config FILE`), without resetting a global one."""
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_config(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aniface", description="Names anime characters in screenshots, illustrations and stickers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    parser.add_argument("--config", metavar="FILE", default=None, help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(commands)
    for child in commands.choices.values():
        _add_config(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter is noise for a command-line user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from bot.config import ConfigError, load_settings
    from bot.logs import configure as configure_logging

    overrides = getattr(args, "settings_overrides", None)
    try:
        args.settings = load_settings(os.environ, args.config, **(overrides(args) if overrides else {}))
    except ConfigError as error:
        print(f"aniface {args.command}: configuration: {error}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args.settings, verbose=args.verbose)
    if getattr(args, "cache_dir", "") is None:  # train, evaluate: the feature cache the settings name
        args.cache_dir = str(args.settings.cache_dir) if args.settings.cache_dir else None
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
