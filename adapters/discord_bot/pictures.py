"""Pictures: those of a message (attachments, stickers, embeds), /identify and Apps -> "Identify characters",
identified by the core and answered."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from typing import AsyncIterator

import discord

from adapters.discord_bot import media, render, texts
from adapters.discord_bot.common import (message_person, PLATFORM, AdapterOptions, chat_key, chat_of, interaction_person,
                                         message_upload_limit, person_of, source_key)
from adapters.discord_bot.jobs import Jobs
from adapters.discord_bot.permissions import ANSWER, WRITE
from adapters.discord_bot.sending import Sender
from bot import wording
from bot.i18n import words
from bot.adapter_kit import LazySign
from bot.messages import IncomingImage, Person, Reply
from bot.ports import CorePort

log = logging.getLogger(__name__)


class Pictures:
    """Identifying pictures and answering them; remembers the messages already looked at."""

    def __init__(self, core: CorePort, options: AdapterOptions, jobs: Jobs, send: Sender,
                 downloader: media.Downloader, button: type[render.FixButton]) -> None:
        self.core = core
        self.options = options
        self.jobs = jobs
        self.send = send
        self.downloader = downloader
        self.button = button
        self._seen: OrderedDict[int, None] = OrderedDict()

    def first_sight(self, message_id: int) -> bool:
        """Whether this message's pictures were not looked at yet (remembered for a while)."""
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        while len(self._seen) > self.options.seen_messages:
            self._seen.popitem(last=False)
        return True

    async def answer(self, trigger: discord.Message, holder: discord.Message, images: list,
                     asked: bool, trigger_id: int | None = None) -> None:
        """Identify the pictures of `holder` and answer each in reply to it (or to `trigger`).

        Where the bot may not answer (send, attach, reply), nothing is asked of Discord: no typing, no
        download, no message; only someone who asked is told what is missing, where the bot may still write."""
        gate = self.send.gate
        if not gate.allows(trigger.channel, ANSWER, "answering pictures"):
            if asked and not gate.lacking(trigger.channel, WRITE):
                w = await self.core.words_for(message_person(trigger),
                                              chat_key(trigger.guild.id if trigger.guild else None, trigger.channel.id))
                await self.send.text(trigger.channel, texts.cannot_answer_here(w, gate.lacking(trigger.channel, ANSWER)),
                                     reference=trigger)
            return
        private = holder.guild is None
        chat_id = chat_key(holder.guild.id if holder.guild else None, holder.channel.id)
        images = images[:self.options.images_per_message]
        several = len(images) > 1
        sign = LazySign(lambda: self._typing(trigger.channel))
        try:
            for index, image in enumerate(images, start=1):
                reply = await self._recognize(image, chat_id, source_key(holder.id, index, trigger_id),
                                              message_person(trigger, private), asked, private, sign)
                if reply is None:
                    continue
                if several:
                    reply = dataclasses.replace(reply, text=wording.picture_note(words(reply.language), index,
                                                                                 reply.text))
                await self.send.reply(trigger.channel, reply, chat_id, reference=holder,
                                      upload_limit=message_upload_limit(holder), button=self.button)
        finally:
            await sign.close()

    async def _recognize(self, image: media.ImageRef, chat_id: str, message_key: str, person: Person,
                         asked: bool, private: bool, sign: LazySign | None = None) -> Reply | None:
        """The core's answer: it decides whether to answer, then fetches the picture through us."""
        async def fetch() -> bytes:
            return await self.downloader.fetch(image)

        return await self.core.identify(IncomingImage(PLATFORM, chat_id, message_key, person,
                                                      asked=asked or private, is_private=private, fetch=fetch,
                                                      working=sign))

    @contextlib.asynccontextmanager
    async def _typing(self, channel: discord.abc.Messageable) -> AsyncIterator[None]:
        """"aniface is typing..." while the bot works (where it may not, it works all the same)."""
        async def keep_typing() -> None:
            while True:
                try:
                    await channel.typing()
                except discord.Forbidden as error:
                    self.send.gate.refused(channel, error)  # not retried, here or for the next picture
                    return
                except discord.HTTPException as error:
                    log.debug("no typing indicator in %s: %s", getattr(channel, "id", "?"), error)
                    return
                await asyncio.sleep(self.options.typing_every)

        task = asyncio.create_task(keep_typing(), name="typing")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def identify_command(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """/identify image:<attachment>"""
        async with self.jobs.track():
            await interaction.response.defer(thinking=True)
            ref = media.attachment_image(image)
            if ref is None:
                w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
                await self.send.followup_text(interaction, texts.not_an_image(w))
                return
            private = interaction.guild_id is None
            reply = await self._recognize(ref, chat_of(interaction), source_key(interaction.id),
                                          interaction_person(interaction), True, private)
            await self.send.followup_reply(interaction, reply, self.button)
            await self.send.permission_note(interaction)

    async def identify_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps -> "Identify characters" on a message."""
        async with self.jobs.track():
            await interaction.response.defer(thinking=True)
            images = media.find_images(message)[:self.options.images_per_message]
            if not images:
                w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
                await self.send.followup_text(interaction, texts.no_picture_there(w))
                return
            private = interaction.guild_id is None
            for index, image in enumerate(images, start=1):
                reply = await self._recognize(image, chat_of(interaction),
                                              source_key(message.id, index, interaction.id),
                                              interaction_person(interaction), True, private)
                if reply is not None and len(images) > 1:
                    reply = dataclasses.replace(reply, text=wording.picture_note(words(reply.language), index,
                                                                                 reply.text))
                await self.send.followup_reply(interaction, reply, self.button)
            await self.send.permission_note(interaction)
