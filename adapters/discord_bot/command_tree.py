"""The slash and context-menu commands, declared once for the client that answers them and for
`aniface discord sync`, which registers them with Discord.

The tree is declared apart from the handlers so that syncing needs no core, no model and no gateway
(a login and one request per scope). Each callback finds its handlers at call time on the client the
interaction came to (`AnifaceClient.handlers`), so the same declaration serves both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

import discord
from discord import app_commands

from adapters.discord_bot import texts

if TYPE_CHECKING:
    from adapters.discord_bot.handlers import DiscordHandlers


def _handlers(interaction: discord.Interaction) -> "DiscordHandlers":
    return interaction.client.handlers  # type: ignore[attr-defined] - an AnifaceClient


def declare_commands(tree: app_commands.CommandTree) -> None:
    """Add every command the bot offers to `tree` (global commands; a sync may copy them to servers)."""

    @tree.command(name="identify", description=texts.COMMANDS["identify"])
    @app_commands.describe(image=texts.IDENTIFY_IMAGE)
    async def identify(interaction: discord.Interaction, image: discord.Attachment) -> None:
        await _handlers(interaction).pictures.identify_command(interaction, image)

    @tree.command(name="help", description=texts.COMMANDS["help"])
    async def help_(interaction: discord.Interaction) -> None:
        await _handlers(interaction).commands.help(interaction)

    @tree.command(name="privacy", description=texts.COMMANDS["privacy"])
    async def privacy(interaction: discord.Interaction) -> None:
        await _handlers(interaction).commands.privacy(interaction)

    @tree.command(name="settings", description=texts.COMMANDS["settings"])
    @app_commands.describe(mode=texts.SETTINGS_MODE, threshold=texts.SETTINGS_THRESHOLD,
                           language=texts.SETTINGS_LANGUAGE)
    @app_commands.default_permissions(manage_guild=True)
    async def settings(interaction: discord.Interaction, mode: Optional[Literal["all", "asked"]] = None,
                       threshold: Optional[app_commands.Range[str, 1, 16]] = None,
                       language: Optional[app_commands.Range[str, 1, 16]] = None) -> None:
        await _handlers(interaction).commands.settings(interaction, mode, threshold, language)

    @tree.command(name="alias", description=texts.COMMANDS["alias"])
    @app_commands.describe(name=texts.ALIAS_NAME, other=texts.ALIAS_OTHER)
    @app_commands.default_permissions(manage_guild=True)
    async def alias(interaction: discord.Interaction, name: app_commands.Range[str, 1, 64],
                    other: app_commands.Range[str, 1, 64]) -> None:
        await _handlers(interaction).commands.alias(interaction, name, other)

    @tree.command(name="export", description=texts.COMMANDS["export"])
    @app_commands.default_permissions(manage_guild=True)
    async def export(interaction: discord.Interaction) -> None:
        await _handlers(interaction).commands.export(interaction)

    @tree.context_menu(name=texts.IDENTIFY_MENU)
    async def identify_menu(interaction: discord.Interaction, message: discord.Message) -> None:
        await _handlers(interaction).pictures.identify_menu(interaction, message)

    @tree.context_menu(name=texts.CORRECT_MENU)
    async def correct_menu(interaction: discord.Interaction, message: discord.Message) -> None:
        await _handlers(interaction).corrections.correct_menu(interaction, message)
