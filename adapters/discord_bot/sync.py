"""Registering the bot's commands with Discord: what `aniface discord sync` runs, once, by hand.

discord.py's maintainers advise syncing the command tree only when the commands change (a command,
option or description added, removed or renamed), from something that is not a slash command, such
as a CLI entry point, and never on every start: syncing is rate-limited (200 command creates a day
per server), and with several shard processes each start would sync again (R. Danny's `?tag sync`,
quoted in r-Techsupport/TechSupportBot#1585; Rapptz/discord.py#7534). So `aniface serve` does not
sync; this logs in over REST only (no gateway session), puts the tree, and logs out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import discord
from discord import app_commands

from adapters.discord_bot.command_tree import declare_commands
from adapters.discord_bot.translator import CatalogTranslator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Synced:
    """One scope synced: a server id, or None for the global commands; the command names Discord now has."""

    guild_id: int | None
    names: tuple[str, ...]


def _sync_client() -> tuple[discord.Client, app_commands.CommandTree]:
    client = discord.Client(intents=discord.Intents(guilds=True))  # no gateway: any intents; this one is quiet
    tree = app_commands.CommandTree(client)
    declare_commands(tree)
    return client, tree


async def sync_tree(tree: app_commands.CommandTree, guild_ids: Sequence[int] = (), *,
                    clear: bool = False) -> list[Synced]:
    """Put `tree`'s commands to Discord: globally, or to each of `guild_ids`, where they appear at once
    (development). `clear`: remove the commands of those servers instead (the global ones stay)."""
    done = []
    if not guild_ids:
        if clear:
            raise ValueError("clearing needs the servers to clear (the global commands are the bot's own)")
        synced = await tree.sync()
        done.append(Synced(None, tuple(command.name for command in synced)))
    for guild_id in guild_ids:
        guild = discord.Object(int(guild_id))
        if clear:
            tree.clear_commands(guild=guild)
        else:
            tree.copy_global_to(guild=guild)
        synced = await tree.sync(guild=guild)
        done.append(Synced(int(guild_id), tuple(command.name for command in synced)))
    return done


async def sync_commands(token: str, guild_ids: Sequence[int] = (), *, clear: bool = False) -> list[Synced]:
    """Log in with `token` and sync the commands (see `sync_tree`). Raises discord.py's errors:
    LoginFailure for a refused token, Forbidden where the bot lacks the applications.commands scope."""
    client, tree = _sync_client()
    async with client:  # closes the HTTP session whatever happens
        await client.login(token)
        await tree.set_translator(CatalogTranslator())  # the commands' descriptions in every shipped language
        return await sync_tree(tree, guild_ids, clear=clear)
