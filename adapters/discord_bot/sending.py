"""Sending the core's answers within Discord's limits: a picture with its names and buttons, a text split to
size, an acknowledgement, an interaction's follow-ups; and telling the core which message carries which
prediction. `button` is the "Correct" button class the answers carry (`Corrections.fix_button`)."""

from __future__ import annotations

import asyncio
import io
import logging

import discord
from PIL import Image

from adapters.discord_bot import render, texts
from adapters.discord_bot.common import (DEFAULT_UPLOAD_LIMIT, PLATFORM, QUIET, REPLY_PING, AdapterOptions, chat_of,
                                         interaction_person, interaction_upload_limit, reference_to)
from adapters.discord_bot.permissions import ANSWER, HISTORY, SEND, VIEW, WRITE, ChannelGate, interaction_permissions, \
    missing
from bot import wording
from bot.i18n import words
from bot.messages import Ack, Reply, ReplyKind
from bot.ports import CorePort

log = logging.getLogger(__name__)


class Sender:
    """Sends only where the bot may (`gate`): a message Discord would refuse is not sent, and a 403 is not retried."""

    def __init__(self, core: CorePort, options: AdapterOptions, gate: ChannelGate | None = None) -> None:
        self.core = core
        self.options = options
        self.gate = gate or ChannelGate()

    async def photo_file(self, png: bytes, limit: int) -> discord.File | None:
        """The annotated PNG; over the upload limit a JPEG of it; None when even that is too large."""
        if len(png) <= limit:
            return discord.File(io.BytesIO(png), filename="faces.png")

        def to_jpeg() -> bytes:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(png)).convert("RGB").save(buffer, "JPEG", quality=88)
            return buffer.getvalue()

        jpeg = await asyncio.to_thread(to_jpeg)
        return discord.File(io.BytesIO(jpeg), filename="faces.jpg") if len(jpeg) <= limit else None

    async def reply(self, channel: discord.abc.Messageable, reply: Reply, chat_id: str, *,
                    reference: discord.Message | discord.PartialMessage | None,
                    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
                    button: type[render.FixButton]) -> None:
        """An answer to one picture: the annotated picture with the names and the buttons, or a text."""
        pieces = render.split_text(reply.text)
        with_picture = reply.kind == ReplyKind.FACES and bool(reply.picture_png)
        if not self.gate.allows(channel, ANSWER if with_picture else WRITE, "answering"):
            return
        try:
            if with_picture:
                file = await self.photo_file(reply.picture_png, upload_limit)
                view = render.answer_view(reply.faces, words(reply.language), self.options.button_faces, button)
                kwargs = {"file": file} if file is not None else {}
                if view is not None:
                    kwargs["view"] = view
                sent = await channel.send(pieces[0], reference=reference_to(reference), mention_author=True,
                                          allowed_mentions=REPLY_PING, **kwargs)
                await self._remember(reply, chat_id, sent)
                for piece in pieces[1:]:
                    await self._remember(reply, chat_id, await channel.send(piece, reference=sent, silent=True,
                                                                            allowed_mentions=QUIET))
            else:
                previous = reference
                for piece in pieces:
                    previous = await channel.send(piece, reference=reference_to(previous), mention_author=True,
                                                  allowed_mentions=REPLY_PING)
                    await self._remember(reply, chat_id, previous)
        except discord.Forbidden as error:
            self.gate.refused(channel, error)

    async def _remember(self, reply: Reply, chat_id: str, sent: discord.Message) -> None:
        """Tell the core which message carries the prediction, so replies and reactions on it find it."""
        if reply.prediction_id is not None:
            await self.core.reply_sent(reply.prediction_id, PLATFORM, chat_id, str(sent.id))

    async def text(self, channel: discord.abc.Messageable, text: str, *,
                   reference: discord.Message | discord.PartialMessage | None = None, quiet: bool = False,
                   prefix: str = "", view: discord.ui.View | None = None,
                   mention: int | None = None) -> discord.Message | None:
        """Plain text (escaped, split), replying to `reference`; the view goes under the last piece."""
        pieces = render.split_text(text, render.MESSAGE_LIMIT - len(prefix))
        pieces[0] = prefix + pieces[0]
        allowed = discord.AllowedMentions(everyone=False, roles=False, replied_user=not quiet,
                                          users=[discord.Object(mention)] if mention else False)
        sent = None
        if not self.gate.allows(channel, (VIEW, SEND, HISTORY) if reference is not None else (VIEW, SEND), "writing"):
            return None
        try:
            for position, piece in enumerate(pieces):
                last = position == len(pieces) - 1
                extra = {"view": view} if (last and view is not None) else {}
                sent = await channel.send(piece, reference=reference_to(reference), mention_author=not quiet,
                                          silent=quiet, allowed_mentions=allowed, **extra)
        except discord.Forbidden as error:
            self.gate.refused(channel, error)
        return sent

    async def ack(self, channel: discord.abc.Messageable, reference: discord.Message | discord.PartialMessage,
                  ack: Ack, user_id: int | None, button: type[render.FixButton]) -> None:
        """A short acknowledgement, silent; where the bot needs a name back, it asks that person, with a
        button that opens the name's modal."""
        wants_answer = ack.wants_answer
        view = (render.ask_view(ack.face_id, words(ack.language), button=button)
                if (ack.asks_for_name and ack.face_id is not None) else None)
        prefix = f"<@{int(user_id)}> " if (user_id is not None and wants_answer) else ""
        await self.text(channel, ack.text, reference=reference, quiet=not wants_answer, prefix=prefix,
                        view=view, mention=user_id if wants_answer else None)

    async def followup_reply(self, interaction: discord.Interaction, reply: Reply | None,
                             button: type[render.FixButton]) -> None:
        if reply is None:  # the core answers every asked picture; kept for safety
            await self.followup_text(interaction, wording.error(words(str(interaction.locale))))
            return
        pieces = render.split_text(reply.text)
        followup = interaction.followup
        if reply.kind == ReplyKind.FACES and reply.picture_png:
            file = await self.photo_file(reply.picture_png, interaction_upload_limit(interaction))
            view = render.answer_view(reply.faces, words(reply.language), self.options.button_faces, button)
            kwargs = {"file": file} if file is not None else {}
            if view is not None:
                kwargs["view"] = view
            sent = await followup.send(pieces[0], wait=True, allowed_mentions=QUIET, **kwargs)
            await self._remember(reply, chat_of(interaction), sent)
            pieces = pieces[1:]
        for piece in pieces:
            sent = await followup.send(piece, wait=True, allowed_mentions=QUIET)
            await self._remember(reply, chat_of(interaction), sent)

    async def followup_text(self, interaction: discord.Interaction, text: str, *, ephemeral: bool = False,
                            file: discord.File | None = None) -> None:
        pieces = render.split_text(text)
        for position, piece in enumerate(pieces):
            extra = {"file": file} if (position == 0 and file is not None) else {}
            await interaction.followup.send(piece, ephemeral=ephemeral, allowed_mentions=QUIET, **extra)

    async def permission_note(self, interaction: discord.Interaction, *, always: bool = False) -> None:
        """After a command answered in a server channel where the bot may not post on its own: say so, privately,
        naming what is missing (once per channel in a while, unless `always`). The answer itself needed nothing."""
        lacks = missing(interaction_permissions(interaction), ANSWER)
        if lacks and (always or self.gate.worth_telling(interaction.channel_id or 0)):
            w = await self.core.words_for(interaction_person(interaction), chat_of(interaction))
            await self.followup_text(interaction, texts.cannot_post_here(w, lacks), ephemeral=True)

    async def interaction_failed(self, interaction: discord.Interaction, error: Exception) -> None:
        """An interaction whose handler failed: logged, and the person told (privately)."""
        log.error("handling interaction %s failed", interaction.id, exc_info=error)
        text = wording.error(words(str(interaction.locale)))  # the database may be the trouble: no chat setting
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as failure:
            log.warning("could not tell about the failure: %s", failure)
