"""Discord events and interactions onto the core's use cases, and the core's replies back onto Discord.

Nothing here decides what a face is, who may correct it or how an answer is worded: that is `bot`.
This module knows how Discord delivers pictures (attachments, stickers, embeds), slash commands,
context-menu commands, buttons, modals and reactions, and how to answer within Discord's limits.

- A chat, for the core, is a server (its guild id: settings, exports and corrections are per server),
  or a private channel with the bot (its channel id).
- Interactions are deferred at once (Discord allows 3 seconds for the first response) and answered
  with follow-ups; a button opens its modal at once, which is its first response.
- Reactions come as raw events, so a reaction on an answer sent before a restart still counts.
- Every handler runs as a tracked job: `drain()` waits for the jobs in flight when the bot stops.

The handlers are grouped by job: `pictures` (pictures in messages, /identify, the Identify menu),
`corrections` (/wrong, asked-for names, reactions, the "Correct" button, modal and menu) and `commands`
(/help, /privacy, /settings, /export); `sending` answers within Discord's limits and `jobs` tracks the
work in flight. This module registers them on the client's command tree and routes its events.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from adapters.discord_bot import media, texts
from adapters.discord_bot.command_tree import declare_commands
from adapters.discord_bot.commands import Commands
from adapters.discord_bot.common import (message_person, DEFAULT_UPLOAD_LIMIT, PLATFORM, WRONG_COMMAND, AdapterOptions, chat_key,
                                         interaction_person, is_wrong_command, manages_chat, person_of, source_key)
from adapters.discord_bot.corrections import Corrections
from adapters.discord_bot.jobs import Jobs
from adapters.discord_bot.permissions import FETCH, ChannelGate
from adapters.discord_bot.pictures import Pictures
from adapters.discord_bot.sending import Sender
from bot import wording
from bot.i18n import words
from bot.ports import CorePort

if TYPE_CHECKING:
    from adapters.discord_bot.app import AnifaceClient

log = logging.getLogger(__name__)

__all__ = ["AdapterOptions", "DEFAULT_UPLOAD_LIMIT", "DiscordHandlers", "PLATFORM", "WRONG_COMMAND", "chat_key",
           "interaction_person", "is_wrong_command", "manages_chat", "person_of", "source_key"]


class DiscordHandlers:
    """The handlers of one client, by job, and what they share (the core, the options, the jobs in flight)."""

    def __init__(self, core: CorePort, options: AdapterOptions | None = None) -> None:
        self.core = core
        self.options = options or AdapterOptions()
        limit = core.max_image_bytes
        if self.options.max_download_bytes is not None:
            limit = min(limit, self.options.max_download_bytes)
        self.downloader = media.Downloader(limit, media_base=self.options.media_base,
                                           timeout=self.options.download_timeout)
        self.client: AnifaceClient | None = None
        self.jobs = Jobs(self.options.drain_timeout)
        self.gate = ChannelGate(self.options.refusal_quiet_for)
        self.send = Sender(core, self.options, self.gate)
        self.corrections = Corrections(core, self.options, self.jobs, self.send)
        self.fix_button = self.corrections.fix_button
        self.pictures = Pictures(core, self.options, self.jobs, self.send, self.downloader, self.fix_button)
        self.commands = Commands(core, self.jobs, self.send)

    # --- wiring ------------------------------------------------------------------------------

    def register(self, client: "AnifaceClient") -> None:
        """The commands on the client's tree (declared in `command_tree`), their error handler, and the buttons."""
        self.client = client
        self.corrections.bind(client)
        tree = client.tree
        declare_commands(tree)
        tree.error(self.command_failed)
        client.add_dynamic_items(self.corrections.fix_button)

    @property
    def me(self) -> discord.ClientUser:
        assert self.client is not None and self.client.user is not None
        return self.client.user

    # --- starting and stopping -----------------------------------------------------------------

    async def open(self) -> None:
        self.jobs.accepting = True
        await self.downloader.open()

    async def drain(self, timeout: float | None = None) -> None:
        """Stop taking new work and wait (up to `timeout`) for the jobs in flight, acks included."""
        await self.jobs.drain(timeout)

    async def close(self) -> None:
        await self.downloader.close()

    # --- message events ------------------------------------------------------------------------

    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.me
        if any(user.id == me.id for user in message.mentions):
            return True
        return any(role.tags is not None and role.tags.bot_id == me.id for role in message.role_mentions)

    async def on_message(self, message: discord.Message) -> None:
        if not self.jobs.accepting or message.author.bot or message.webhook_id is not None:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        async with self.jobs.track():
            try:
                await self._on_message(message)
            except Exception as error:  # noqa: BLE001 - one message must not stop the others
                await self._message_failed(message, error)

    async def _on_message(self, message: discord.Message) -> None:
        private = message.guild is None
        images = media.find_images(message)
        mentioned = self._mentions_me(message)
        if images:
            self.pictures.first_sight(message.id)
            await self.pictures.answer(message, message, images, asked=private or mentioned)
            return
        text = message.content or ""
        if is_wrong_command(text):
            await self.corrections.wrong(message, text.strip()[len(WRONG_COMMAND):])
            return
        if mentioned and message.reference is not None:
            target = await self._referenced(message)
            if target is not None and (target_images := media.find_images(target)):
                await self.pictures.answer(message, target, target_images, asked=True, trigger_id=message.id)
                return
        if private or await self._replies_to_me(message):
            await self.corrections.answer_text(message, private)
        elif mentioned and message.reference is None:
            w = await self.core.words_for(message_person(message), chat_key(message.guild.id if message.guild else None,
                                                                           message.channel.id))
            await self.send.text(message.channel, texts.mention_how(w), reference=message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Discord adds a link's embed after the message was created: its picture is answered then."""
        message = getattr(payload, "message", None)  # discord.py 2.5+
        if message is None or not self.jobs.accepting or not message.embeds:
            return
        if message.author.bot or message.webhook_id is not None:
            return
        if payload.cached_message is not None and payload.cached_message.embeds:
            return
        images = media.embed_images(message.embeds)
        if not images or not self.pictures.first_sight(message.id):
            return
        async with self.jobs.track():
            try:
                await self.pictures.answer(message, message, images,
                                           asked=message.guild is None or self._mentions_me(message))
            except Exception as error:  # noqa: BLE001
                await self._message_failed(message, error)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction added to a message (a raw event: an answer sent before a restart counts too)."""
        await self.corrections.on_raw_reaction_add(payload)

    async def _referenced(self, message: discord.Message) -> discord.Message | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        if isinstance(reference.resolved, discord.Message):
            return reference.resolved
        if reference.resolved is not None:  # deleted
            return None
        if not self.gate.allows(message.channel, FETCH, "reading the message replied to"):
            return None
        try:
            return await message.channel.fetch_message(reference.message_id)
        except discord.HTTPException as error:
            log.debug("could not fetch the message %s replied to: %s", reference.message_id, error)
            return None

    async def _replies_to_me(self, message: discord.Message) -> bool:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return False
        resolved = reference.resolved
        if isinstance(resolved, discord.Message):
            return resolved.author.id == self.me.id
        return resolved is None  # not included: the core knows whether it asked this person something

    async def _message_failed(self, message: discord.Message, error: Exception) -> None:
        """Log it; tell the channel something went wrong, unless Discord itself is the trouble."""
        log.error("handling message %s failed", message.id, exc_info=error)
        if isinstance(error, discord.HTTPException):
            return
        with contextlib.suppress(discord.HTTPException):
            guild = message.guild  # the database may be the trouble: no chat setting, the server's language
            await self.send.text(message.channel, wording.error(words(str(guild.preferred_locale) if guild else None)),
                                 reference=message)

    async def command_failed(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self.send.interaction_failed(interaction, getattr(error, "original", error))
