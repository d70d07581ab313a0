"""Commands: /help, /privacy, and the server admins' /settings and /export."""

from __future__ import annotations

import discord

from adapters.discord_bot import render, texts
from adapters.discord_bot.common import PLATFORM, chat_of, interaction_person, interaction_upload_limit
from adapters.discord_bot.jobs import Jobs
from adapters.discord_bot.sending import Sender
from bot import chat_settings, wording
from bot.ports import CorePort, NotAllowed


class Commands:
    def __init__(self, core: CorePort, jobs: Jobs, send: Sender) -> None:
        self.core = core
        self.jobs = jobs
        self.send = send

    async def help(self, interaction: discord.Interaction) -> None:
        w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
        await interaction.response.send_message(render.split_text(texts.help_text(w))[0], ephemeral=True)

    async def privacy(self, interaction: discord.Interaction) -> None:
        w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
        await interaction.response.send_message(render.split_text(wording.privacy(w, "Discord"))[0], ephemeral=True)

    async def settings(self, interaction: discord.Interaction, mode: str | None, threshold: str | None,
                       language: str | None = None) -> None:
        """/settings shows them; /settings mode:asked threshold:40% language:ja changes them (Manage Server)."""
        async with self.jobs.track():
            await interaction.response.defer(ephemeral=True, thinking=True)
            chat_id = chat_of(interaction)
            w = await self.core.words_for(interaction_person(interaction), chat_id)
            if mode is None and threshold is None and language is None:
                view = await self.core.chat_settings(PLATFORM, chat_id)
                await self.send.followup_text(interaction, texts.settings_view(w, view, interaction.guild_id is None),
                                              ephemeral=True)
                return
            change = chat_settings.combine(mode, threshold, language)
            if change is None:
                await self.send.followup_text(interaction, texts.settings_usage(w), ephemeral=True)
                return
            ack = await self.core.update_settings(interaction_person(interaction), chat_id, change)
            await self.send.followup_text(interaction, ack.text, ephemeral=True)
            if ack.ok:  # the manager who chose when pictures are answered hears where the bot cannot answer
                await self.send.permission_note(interaction, always=True)

    async def alias(self, interaction: discord.Interaction, name: str, other: str) -> None:
        """/alias name:Yagami Kou other:八神コウ (the core says who may)."""
        async with self.jobs.track():
            await interaction.response.defer(ephemeral=True, thinking=True)
            ack = await self.core.add_alias(interaction_person(interaction), chat_of(interaction), f"{name} = {other}")
            await self.send.followup_text(interaction, ack.text, ephemeral=True)

    async def export(self, interaction: discord.Interaction) -> None:
        """/export: the corrections as a training archive, in a message only the admin sees."""
        async with self.jobs.track():
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                scope = self.core.export_scope(interaction_person(interaction), chat_of(interaction))
            except NotAllowed as refusal:
                await self.send.followup_text(interaction, str(refusal), ephemeral=True)
                return
            limit = interaction_upload_limit(interaction)
            async with self.core.export_archive(PLATFORM, scope) as export:
                if export.size > limit:
                    await self.send.followup_text(interaction, texts.export_too_large(await self.core.words_for(interaction_person(interaction), chat_of(interaction)),
                                                                        export.size, limit),
                                                  ephemeral=True)
                    return
                await self.send.followup_text(interaction, export.summary.describe(), ephemeral=True,
                                              file=discord.File(export.path, filename=export.filename))
