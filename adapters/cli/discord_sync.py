"""`aniface discord sync [--guild ID ...] [--clear]`: register the bot's slash and Apps-menu commands
with Discord.

Run it once after installing, and again when an upgrade changes the commands, from one place (not
from every shard process): discord.py's maintainers advise syncing only when commands change, from a
CLI entry point, never at every start (adapters/discord_bot/sync.py has why). `aniface serve` does not
sync. Global commands can take a while to show up everywhere; `--guild` (or DISCORD_GUILD_IDS) puts
them in those servers only, where they appear at once, for development; `--clear` takes those servers'
copies away again (the global ones stay).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from adapters.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("discord", help="Discord operations: register the bot's commands",
                                 description="Discord operations that are not serving.")
    actions = parser.add_subparsers(dest="discord_action", metavar="ACTION", required=True)
    sync = actions.add_parser(
        "sync", help="register the slash and Apps-menu commands with Discord (after installing or an upgrade)",
        description="Register the bot's slash and Apps-menu commands with Discord: globally, or in the servers "
                    "given (--guild, else DISCORD_GUILD_IDS), where they appear at once. Run it once after "
                    "installing and when an upgrade changes the commands; `aniface serve` does not sync.")
    sync.add_argument("--guild", metavar="ID", type=_snowflake, action="append", default=None,
                      help="a server to sync to (repeat for several; default: DISCORD_GUILD_IDS, else globally)")
    sync.add_argument("--clear", action="store_true",
                      help="remove the commands synced to those servers (the global commands stay)")
    parser.set_defaults(run=run)


def _snowflake(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a server id (a number)")
    return int(text)


def _fail(message: str, code: int) -> int:
    print(f"aniface discord sync: {message}", file=sys.stderr, flush=True)
    return code


def run(args: argparse.Namespace) -> int:
    settings = args.settings
    token = (settings.discord_token or "").strip()
    if not token:
        return _fail("DISCORD_TOKEN is not set (the bot's token, from the Developer Portal -> your application "
                     "-> Bot).", EXIT_USAGE)
    guild_ids = tuple(args.guild or settings.discord_guild_ids)
    if args.clear and not guild_ids:
        return _fail("--clear needs the servers to clear (--guild ID or DISCORD_GUILD_IDS).", EXIT_USAGE)

    import discord

    from adapters.discord_bot.sync import sync_commands

    try:
        done = asyncio.run(sync_commands(token, guild_ids, clear=args.clear))
    except discord.LoginFailure:
        return _fail("Discord refused DISCORD_TOKEN: copy it again from the Developer Portal (your application "
                     "-> Bot -> Reset Token).", EXIT_USAGE)
    except discord.Forbidden as error:
        return _fail(f"Discord refused the commands ({error.text or error}): was the bot invited to that server "
                     "with the applications.commands scope?", EXIT_FAILED)
    except (discord.HTTPException, OSError) as error:
        return _fail(f"could not sync: {type(error).__name__}: {error}", EXIT_FAILED)
    for synced in done:
        where = "globally (they can take a while to appear everywhere)" if synced.guild_id is None \
            else f"to server {synced.guild_id}"
        if args.clear:
            print(f"cleared the commands of server {synced.guild_id}", flush=True)
        else:
            print(f"synced {len(synced.names)} commands {where}: {', '.join(synced.names)}", flush=True)
    return EXIT_OK
