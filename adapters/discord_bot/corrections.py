"""Corrections: /wrong, the name the bot asked for, a reaction on an answer, the "Correct" button and its
modal, and Apps -> "Correct this". The core says what each one means; reaction acknowledgements in a
channel are batched into one message."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from adapters.discord_bot import render, texts
from adapters.discord_bot.common import (PLATFORM, AdapterOptions, chat_key, chat_of, interaction_person,
                                         message_person)
from adapters.discord_bot.jobs import Jobs
from adapters.discord_bot.sending import Sender
from bot import wording
from bot.i18n import words
from bot.adapter_kit import AckBatcher
from bot.messages import Person
from bot.ports import CorePort

if TYPE_CHECKING:
    from adapters.discord_bot.app import AnifaceClient

log = logging.getLogger(__name__)


class Corrections:
    """The correction handlers, the "Correct" button they own, and the acknowledgements waiting to be sent."""

    def __init__(self, core: CorePort, options: AdapterOptions, jobs: Jobs, send: Sender) -> None:
        self.core = core
        self.options = options
        self.jobs = jobs
        self.send = send
        self.client: AnifaceClient | None = None
        self._acks: AckBatcher[discord.PartialMessageable] = AckBatcher(
            self._send_acks, lambda coroutine: self.jobs.spawn(coroutine, name="acks"), lines=self.options.ack_lines,
            window=lambda: self.options.ack_window if self.jobs.accepting else 0)
        self.fix_button = render.fix_button(self.fix_pressed)

    def bind(self, client: "AnifaceClient") -> None:
        self.client = client

    @property
    def me(self) -> discord.ClientUser:
        assert self.client is not None and self.client.user is not None
        return self.client.user

    async def wrong(self, message: discord.Message, arguments: str) -> None:
        """/wrong [n] [name] in reply to one of the bot's answers."""
        reference = message.reference
        if reference is None or reference.message_id is None:
            w = await self.core.words_for(message_person(message), chat_key(message.guild.id if message.guild else None,
                                                                               message.channel.id))
            await self.send.text(message.channel, wording.wrong_how(w), reference=message)
            return
        chat_id = chat_key(message.guild.id if message.guild else None, message.channel.id)
        ack = await self.core.wrong_command(message_person(message, message.guild is None), chat_id,
                                            str(reference.message_id), arguments)
        await self.send.ack(message.channel, message, ack, user_id=None, button=self.fix_button)

    async def answer_text(self, message: discord.Message, private: bool) -> None:
        """A name the bot asked for (a reply to the bot in a server), or chat in a private channel."""
        text = (message.content or "").strip()
        chat_id = chat_key(message.guild.id if message.guild else None, message.channel.id)
        if not text:
            if private and message.attachments:
                w = await self.core.words_for(message_person(message, private), chat_id)
                await self.send.text(message.channel, texts.not_an_image(w), reference=message)
            return
        ack = await self.core.answer_question(message_person(message, private), chat_id, text)
        if ack is None:
            if private:
                w = await self.core.words_for(message_person(message, private), chat_id)
                await self.send.text(message.channel, texts.send_a_picture(w), reference=message)
            return
        await self.send.ack(message.channel, message, ack, user_id=None, button=self.fix_button)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction added to a message; the core says whether it is a correction of an answer."""
        if not self.jobs.accepting or payload.user_id == self.me.id:
            return
        if payload.member is not None and payload.member.bot:
            return
        if payload.emoji.is_custom_emoji():
            return  # a server's own emoji means nothing to the bot
        async with self.jobs.track():
            chat_id = chat_key(payload.guild_id, payload.channel_id)
            server = self.client.get_guild(payload.guild_id) if payload.guild_id else None
            person = Person(PLATFORM, str(payload.user_id), language=str(server.preferred_locale) if server else None)
            ack = await self.core.react(person, chat_id, str(payload.message_id), str(payload.emoji))
            if ack is None or ack.quiet:
                return  # an emoji that means nothing, or a message that is not an answer: stay quiet
            assert self.client is not None
            # the cached channel, whose permissions say whether the bot may answer there; else a partial one
            guild = self.client.get_guild(payload.guild_id) if payload.guild_id else None
            channel = (guild.get_channel_or_thread(payload.channel_id) if guild is not None else None) \
                or self.client.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
            answer = channel.get_partial_message(payload.message_id)
            if ack.wants_answer:
                await self.send.ack(channel, answer, ack, user_id=payload.user_id, button=self.fix_button)
            else:
                self._acks.add(channel, payload.message_id, ack.text, words(ack.language))

    async def _send_acks(self, channel: discord.PartialMessageable, reply_to: int, text: str) -> None:
        await self.send.text(channel, text, reference=channel.get_partial_message(reply_to), quiet=True)

    async def fix_pressed(self, interaction: discord.Interaction, face_id: int, number: int) -> None:
        """A "Correct" button: the modal asking for the name, at once (it is the first response)."""
        async with self.jobs.track():
            w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
            await interaction.response.send_modal(render.NameModal(face_id, w, number, on_name=self.name_submitted,
                                                                   on_error=self.send.interaction_failed))

    async def name_submitted(self, interaction: discord.Interaction, face_id: int, text: str) -> None:
        """The name typed in the modal, as typed: the core reads it (a bare number is one of its guesses)."""
        async with self.jobs.track():
            await interaction.response.defer(ephemeral=True, thinking=True)
            ack = await self.core.name_face(interaction_person(interaction), face_id, text, via="button",
                                            chat_id=chat_of(interaction))
            await self.send.followup_text(interaction, ack.text, ephemeral=True)

    async def correct_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps -> "Correct this" on one of the bot's answers: a modal for the face and the name."""
        async with self.jobs.track():
            w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
            if message.author.id != self.me.id:
                await interaction.response.send_message(texts.not_my_answer(w), ephemeral=True)
                return
            await interaction.response.send_modal(render.CorrectModal(message.id, w,
                                                                      on_correct=self.correction_submitted,
                                                                      on_error=self.send.interaction_failed))

    async def correction_submitted(self, interaction: discord.Interaction, message_id: int, face: str,
                                   name: str) -> None:
        async with self.jobs.track():
            await interaction.response.defer(ephemeral=True, thinking=True)
            face, name = face.strip().lstrip("#"), name.strip()
            if face and not face.isdigit():
                w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
                await self.send.followup_text(interaction, texts.bad_face_number(w), ephemeral=True)
                return
            ack = await self.core.correct_typed(interaction_person(interaction), chat_of(interaction),
                                                str(message_id), int(face) if face else None, name, via="button")
            await self.send.followup_text(interaction, ack.text, ephemeral=True)
