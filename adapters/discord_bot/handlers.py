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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Literal, Optional

import discord
from discord import app_commands
from PIL import Image

from adapters.discord_bot import media, render, texts
from bot import chat_settings, wording
from bot.adapter_kit import AckBatcher, LazySign
from bot.messages import Ack, IncomingImage, Person, Reply, ReplyKind
from bot.ports import CorePort, NotAllowed

if TYPE_CHECKING:
    from adapters.discord_bot.app import AnifaceClient

log = logging.getLogger(__name__)

PLATFORM = "discord"
WRONG_COMMAND = "/wrong"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # what a bot may attach in a server without boosts, and in DMs


@dataclass
class AdapterOptions:
    """How the adapter behaves; the defaults are for production, tests shorten the waits."""

    ack_window: float = 4.0           # reaction acknowledgements in a channel within this window go in one message
    ack_lines: int = 8                # at most this many lines in one acknowledgement
    button_faces: int = 10            # faces that get a "Correct" button (Discord allows 25 buttons)
    images_per_message: int = 4       # pictures of one message that are answered
    typing_every: float = 8.0         # "is typing..." lasts 10 s: repeat it while working
    max_download_bytes: int | None = None   # None: the recognizer's own limit (25 MB)
    download_timeout: float = 30.0
    media_base: str | None = None     # Discord's CDN and media proxy reached here instead (a test server)
    guild_ready_timeout: float = 2.0  # discord.py's wait for the servers after READY
    drain_timeout: float = 60.0       # how long stopping waits for the jobs in flight
    seen_messages: int = 2048         # message ids remembered, so that an edit adding an embed is answered once


def chat_key(guild_id: int | None, channel_id: int) -> str:
    """The core's chat: the server, or the private channel."""
    return str(guild_id) if guild_id else str(channel_id)


def person_of(user: discord.abc.User | discord.Object, is_chat_admin: bool = False,
              in_private: bool = False) -> Person:
    return Person(PLATFORM, str(user.id), is_chat_admin, in_private)


def interaction_person(interaction: discord.Interaction) -> Person:
    """Who used a command, a button or a menu, with what Discord says of their rights here."""
    return person_of(interaction.user, manages_chat(interaction), interaction.guild_id is None)


def source_key(message_id: int, index: int = 1, trigger_id: int | None = None) -> str:
    """The core's `message_id` of a picture: the message holding it, its place in the message when it
    is not the first, and the message or interaction that asked when it was asked for afterwards (a
    picture may be identified more than once; each identification is its own prediction)."""
    key = str(message_id) if index == 1 else f"{message_id}.{index}"
    return key if trigger_id is None else f"{key}@{trigger_id}"


def manages_chat(interaction: discord.Interaction) -> bool:
    """Manage Server (or Administrator) in a server, as Discord computed it for this interaction (a
    private chat is the core's rule: `Person.in_private`)."""
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    return bool(permissions.manage_guild or permissions.administrator)


def is_wrong_command(text: str) -> bool:
    head = text.strip().split(maxsplit=1)[0].lower() if text.strip() else ""
    return head == WRONG_COMMAND


class DiscordHandlers:
    """The handlers of one client, and the little state they share (jobs in flight, pending acks)."""

    def __init__(self, core: CorePort, options: AdapterOptions | None = None) -> None:
        self.core = core
        self.options = options or AdapterOptions()
        limit = core.max_image_bytes
        if self.options.max_download_bytes is not None:
            limit = min(limit, self.options.max_download_bytes)
        self.downloader = media.Downloader(limit, media_base=self.options.media_base,
                                           timeout=self.options.download_timeout)
        self.client: AnifaceClient | None = None
        self.accepting = True
        self._jobs: set[asyncio.Task] = set()
        self._acks: AckBatcher[discord.PartialMessageable] = AckBatcher(
            self._send_acks, lambda coroutine: self._spawn(coroutine, name="acks"), lines=self.options.ack_lines,
            window=lambda: self.options.ack_window if self.accepting else 0)
        self.fix_button = render.fix_button(self.fix_pressed)
        self._seen: OrderedDict[int, None] = OrderedDict()

    # --- wiring ------------------------------------------------------------------------------

    def register(self, client: "AnifaceClient") -> None:
        """The slash commands and context-menu commands on the client's tree, and the buttons."""
        self.client = client
        tree = client.tree
        handlers = self

        @tree.command(name="identify", description=texts.COMMANDS["identify"])
        @app_commands.describe(image=texts.IDENTIFY_IMAGE)
        async def identify(interaction: discord.Interaction, image: discord.Attachment) -> None:
            await handlers.identify_command(interaction, image)

        @tree.command(name="help", description=texts.COMMANDS["help"])
        async def help_(interaction: discord.Interaction) -> None:
            await handlers.help(interaction)

        @tree.command(name="privacy", description=texts.COMMANDS["privacy"])
        async def privacy(interaction: discord.Interaction) -> None:
            await handlers.privacy(interaction)

        @tree.command(name="settings", description=texts.COMMANDS["settings"])
        @app_commands.describe(mode=texts.SETTINGS_MODE, threshold=texts.SETTINGS_THRESHOLD)
        @app_commands.default_permissions(manage_guild=True)
        async def settings(interaction: discord.Interaction, mode: Optional[Literal["all", "asked"]] = None,
                           threshold: Optional[app_commands.Range[str, 1, 16]] = None) -> None:
            await handlers.settings(interaction, mode, threshold)

        @tree.command(name="export", description=texts.COMMANDS["export"])
        @app_commands.default_permissions(manage_guild=True)
        async def export(interaction: discord.Interaction) -> None:
            await handlers.export(interaction)

        @tree.context_menu(name=texts.IDENTIFY_MENU)
        async def identify_menu(interaction: discord.Interaction, message: discord.Message) -> None:
            await handlers.identify_menu(interaction, message)

        @tree.context_menu(name=texts.CORRECT_MENU)
        async def correct_menu(interaction: discord.Interaction, message: discord.Message) -> None:
            await handlers.correct_menu(interaction, message)

        tree.error(self.command_failed)
        client.add_dynamic_items(self.fix_button)

    @property
    def me(self) -> discord.ClientUser:
        assert self.client is not None and self.client.user is not None
        return self.client.user

    # --- jobs --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _job(self) -> AsyncIterator[None]:
        """Track the running task, so that stopping waits for it."""
        task = asyncio.current_task()
        if task is not None:
            self._jobs.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._jobs.discard(task)

    def _spawn(self, coroutine, name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task

    async def open(self) -> None:
        self.accepting = True
        await self.downloader.open()

    async def drain(self, timeout: float | None = None) -> None:
        """Stop taking new work and wait (up to `timeout`) for the jobs in flight, acks included."""
        self.accepting = False
        current = asyncio.current_task()
        deadline = time.monotonic() + (self.options.drain_timeout if timeout is None else timeout)
        while jobs := [job for job in self._jobs if job is not current and not job.done()]:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("Discord: %d job(s) still running after the drain timeout; leaving them", len(jobs))
                return
            await asyncio.wait(jobs, timeout=left)

    async def close(self) -> None:
        await self.downloader.close()

    # --- pictures in messages ------------------------------------------------------------------

    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.me
        if any(user.id == me.id for user in message.mentions):
            return True
        return any(role.tags is not None and role.tags.bot_id == me.id for role in message.role_mentions)

    def _first_sight(self, message_id: int) -> bool:
        """Whether this message's pictures were not looked at yet (remembered for a while)."""
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        while len(self._seen) > self.options.seen_messages:
            self._seen.popitem(last=False)
        return True

    async def on_message(self, message: discord.Message) -> None:
        if not self.accepting or message.author.bot or message.webhook_id is not None:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        async with self._job():
            try:
                await self._on_message(message)
            except Exception as error:  # noqa: BLE001 - one message must not stop the others
                await self._message_failed(message, error)

    async def _on_message(self, message: discord.Message) -> None:
        private = message.guild is None
        images = media.find_images(message)
        mentioned = self._mentions_me(message)
        if images:
            self._first_sight(message.id)
            await self._answer_pictures(message, message, images, asked=private or mentioned)
            return
        text = message.content or ""
        if is_wrong_command(text):
            await self._wrong(message, text.strip()[len(WRONG_COMMAND):])
            return
        if mentioned and message.reference is not None:
            target = await self._referenced(message)
            if target is not None and (target_images := media.find_images(target)):
                await self._answer_pictures(message, target, target_images, asked=True, trigger_id=message.id)
                return
        if private or await self._replies_to_me(message):
            await self._answer_text(message, private)
        elif mentioned and message.reference is None:
            await self._send_text(message.channel, texts.MENTION_HOW, reference=message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Discord adds a link's embed after the message was created: its picture is answered then."""
        message = getattr(payload, "message", None)  # discord.py 2.5+
        if message is None or not self.accepting or not message.embeds:
            return
        if message.author.bot or message.webhook_id is not None:
            return
        if payload.cached_message is not None and payload.cached_message.embeds:
            return
        images = media.embed_images(message.embeds)
        if not images or not self._first_sight(message.id):
            return
        async with self._job():
            try:
                await self._answer_pictures(message, message, images,
                                            asked=message.guild is None or self._mentions_me(message))
            except Exception as error:  # noqa: BLE001
                await self._message_failed(message, error)

    async def _answer_pictures(self, trigger: discord.Message, holder: discord.Message, images: list,
                               asked: bool, trigger_id: int | None = None) -> None:
        """Identify the pictures of `holder` and answer each in reply to it (or to `trigger`)."""
        private = holder.guild is None
        chat_id = chat_key(holder.guild.id if holder.guild else None, holder.channel.id)
        images = images[:self.options.images_per_message]
        several = len(images) > 1
        sign = LazySign(lambda: self._typing(trigger.channel))
        try:
            for index, image in enumerate(images, start=1):
                reply = await self._recognize(image, chat_id, source_key(holder.id, index, trigger_id),
                                              person_of(trigger.author, in_private=private), asked, private, sign)
                if reply is None:
                    continue
                if several:
                    reply = dataclasses.replace(reply, text=wording.picture_note(index, reply.text))
                await self._send_reply(trigger.channel, reply, chat_id, reference=holder,
                                       upload_limit=_upload_limit(holder))
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

    async def _referenced(self, message: discord.Message) -> discord.Message | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        if isinstance(reference.resolved, discord.Message):
            return reference.resolved
        if reference.resolved is not None:  # deleted
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

    # --- sending answers -----------------------------------------------------------------------

    async def _photo_file(self, png: bytes, limit: int) -> discord.File | None:
        """The annotated PNG; over the upload limit a JPEG of it; None when even that is too large."""
        if len(png) <= limit:
            return discord.File(io.BytesIO(png), filename="faces.png")

        def to_jpeg() -> bytes:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(png)).convert("RGB").save(buffer, "JPEG", quality=88)
            return buffer.getvalue()

        jpeg = await asyncio.to_thread(to_jpeg)
        return discord.File(io.BytesIO(jpeg), filename="faces.jpg") if len(jpeg) <= limit else None

    async def _send_reply(self, channel: discord.abc.Messageable, reply: Reply, chat_id: str, *,
                          reference: discord.Message | discord.PartialMessage | None,
                          upload_limit: int = DEFAULT_UPLOAD_LIMIT) -> None:
        """An answer to one picture: the annotated picture with the names and the buttons, or a text."""
        pieces = render.split_text(reply.text)
        try:
            if reply.kind == ReplyKind.FACES and reply.annotated_png:
                file = await self._photo_file(reply.annotated_png, upload_limit)
                view = render.answer_view(reply.faces, self.options.button_faces, self.fix_button)
                kwargs = {"file": file} if file is not None else {}
                if view is not None:
                    kwargs["view"] = view
                sent = await channel.send(pieces[0], reference=_reference(reference), mention_author=True,
                                          allowed_mentions=_REPLY_PING, **kwargs)
                await self._remember(reply, chat_id, sent)
                for piece in pieces[1:]:
                    await self._remember(reply, chat_id, await channel.send(piece, reference=sent, silent=True,
                                                                            allowed_mentions=_QUIET))
            else:
                previous = reference
                for piece in pieces:
                    previous = await channel.send(piece, reference=_reference(previous), mention_author=True,
                                                  allowed_mentions=_REPLY_PING)
                    await self._remember(reply, chat_id, previous)
        except discord.Forbidden as error:
            log.warning("may not answer in channel %s: %s", getattr(channel, "id", "?"), error)

    async def _remember(self, reply: Reply, chat_id: str, sent: discord.Message) -> None:
        """Tell the core which message carries the prediction, so replies and reactions on it find it."""
        if reply.prediction_id is not None:
            await self.core.reply_sent(reply.prediction_id, PLATFORM, chat_id, str(sent.id))

    async def _send_text(self, channel: discord.abc.Messageable, text: str, *,
                         reference: discord.Message | discord.PartialMessage | None = None, quiet: bool = False,
                         prefix: str = "", view: discord.ui.View | None = None,
                         mention: int | None = None) -> discord.Message | None:
        """Plain text (escaped, split), replying to `reference`; the view goes under the last piece."""
        pieces = render.split_text(text, render.MESSAGE_LIMIT - len(prefix))
        pieces[0] = prefix + pieces[0]
        allowed = discord.AllowedMentions(everyone=False, roles=False, replied_user=not quiet,
                                          users=[discord.Object(mention)] if mention else False)
        sent = None
        try:
            for position, piece in enumerate(pieces):
                last = position == len(pieces) - 1
                extra = {"view": view} if (last and view is not None) else {}
                sent = await channel.send(piece, reference=_reference(reference), mention_author=not quiet,
                                          silent=quiet, allowed_mentions=allowed, **extra)
        except discord.Forbidden as error:
            log.warning("may not write in channel %s: %s", getattr(channel, "id", "?"), error)
        return sent

    # --- corrections ---------------------------------------------------------------------------

    async def _wrong(self, message: discord.Message, arguments: str) -> None:
        """/wrong [n] [name] in reply to one of the bot's answers."""
        reference = message.reference
        if reference is None or reference.message_id is None:
            await self._send_text(message.channel, wording.WRONG_HOW, reference=message)
            return
        chat_id = chat_key(message.guild.id if message.guild else None, message.channel.id)
        ack = await self.core.wrong_command(person_of(message.author, in_private=message.guild is None), chat_id,
                                            str(reference.message_id), arguments)
        await self._send_ack(message.channel, message, ack, user_id=None)

    async def _send_ack(self, channel: discord.abc.Messageable, reference: discord.Message | discord.PartialMessage,
                        ack: Ack, user_id: int | None) -> None:
        """A short acknowledgement, silent; where the bot needs a name back, it asks that person, with a
        button that opens the name's modal."""
        wants_answer = ack.wants_answer
        view = render.ask_view(ack.face_id, button=self.fix_button) if (ack.asks_for_name and ack.face_id is not None) else None
        prefix = f"<@{int(user_id)}> " if (user_id is not None and wants_answer) else ""
        await self._send_text(channel, ack.text, reference=reference, quiet=not wants_answer, prefix=prefix,
                              view=view, mention=user_id if wants_answer else None)

    async def _answer_text(self, message: discord.Message, private: bool) -> None:
        """A name the bot asked for (a reply to the bot in a server), or chat in a private channel."""
        text = (message.content or "").strip()
        if not text:
            if private and message.attachments:
                await self._send_text(message.channel, texts.NOT_AN_IMAGE, reference=message)
            return
        chat_id = chat_key(message.guild.id if message.guild else None, message.channel.id)
        ack = await self.core.answer_question(person_of(message.author, in_private=private), chat_id, text)
        if ack is None:
            if private:
                await self._send_text(message.channel, texts.SEND_A_PICTURE, reference=message)
            return
        await self._send_ack(message.channel, message, ack, user_id=None)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction added to a message; the core says whether it is a correction of an answer."""
        if not self.accepting or payload.user_id == self.me.id:
            return
        if payload.member is not None and payload.member.bot:
            return
        if payload.emoji.is_custom_emoji():
            return  # a server's own emoji means nothing to the bot
        async with self._job():
            chat_id = chat_key(payload.guild_id, payload.channel_id)
            ack = await self.core.react(Person(PLATFORM, str(payload.user_id)), chat_id, str(payload.message_id),
                                        str(payload.emoji))
            if ack is None or ack.quiet:
                return  # an emoji that means nothing, or a message that is not an answer: stay quiet
            assert self.client is not None
            channel = self.client.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
            answer = channel.get_partial_message(payload.message_id)
            if ack.wants_answer:
                await self._send_ack(channel, answer, ack, user_id=payload.user_id)
            else:
                self._acks.add(channel, payload.message_id, ack.text)

    async def _send_acks(self, channel: discord.PartialMessageable, reply_to: int, text: str) -> None:
        await self._send_text(channel, text, reference=channel.get_partial_message(reply_to), quiet=True)

    # --- interactions: pictures ----------------------------------------------------------------

    @staticmethod
    def _chat_of(interaction: discord.Interaction) -> str:
        return chat_key(interaction.guild_id, interaction.channel_id or 0)

    async def identify_command(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """/identify image:<attachment>"""
        async with self._job():
            await interaction.response.defer(thinking=True)
            ref = media.attachment_image(image)
            if ref is None:
                await self._followup_text(interaction, texts.NOT_AN_IMAGE)
                return
            private = interaction.guild_id is None
            reply = await self._recognize(ref, self._chat_of(interaction), source_key(interaction.id),
                                          interaction_person(interaction), True, private)
            await self._followup_reply(interaction, reply)

    async def identify_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps -> "Identify characters" on a message."""
        async with self._job():
            await interaction.response.defer(thinking=True)
            images = media.find_images(message)[:self.options.images_per_message]
            if not images:
                await self._followup_text(interaction, texts.NO_PICTURE_THERE)
                return
            private = interaction.guild_id is None
            for index, image in enumerate(images, start=1):
                reply = await self._recognize(image, self._chat_of(interaction),
                                              source_key(message.id, index, interaction.id),
                                              interaction_person(interaction), True, private)
                if reply is not None and len(images) > 1:
                    reply = dataclasses.replace(reply, text=wording.picture_note(index, reply.text))
                await self._followup_reply(interaction, reply)

    async def _followup_reply(self, interaction: discord.Interaction, reply: Reply | None) -> None:
        if reply is None:  # the core answers every asked picture; kept for safety
            await self._followup_text(interaction, wording.ERROR)
            return
        pieces = render.split_text(reply.text)
        followup = interaction.followup
        if reply.kind == ReplyKind.FACES and reply.annotated_png:
            file = await self._photo_file(reply.annotated_png, _interaction_upload_limit(interaction))
            view = render.answer_view(reply.faces, self.options.button_faces, self.fix_button)
            kwargs = {"file": file} if file is not None else {}
            if view is not None:
                kwargs["view"] = view
            sent = await followup.send(pieces[0], wait=True, allowed_mentions=_QUIET, **kwargs)
            await self._remember(reply, self._chat_of(interaction), sent)
            pieces = pieces[1:]
        for piece in pieces:
            sent = await followup.send(piece, wait=True, allowed_mentions=_QUIET)
            await self._remember(reply, self._chat_of(interaction), sent)

    async def _followup_text(self, interaction: discord.Interaction, text: str, *, ephemeral: bool = False,
                             file: discord.File | None = None) -> None:
        pieces = render.split_text(text)
        for position, piece in enumerate(pieces):
            extra = {"file": file} if (position == 0 and file is not None) else {}
            await interaction.followup.send(piece, ephemeral=ephemeral, allowed_mentions=_QUIET, **extra)

    # --- interactions: corrections -------------------------------------------------------------

    async def fix_pressed(self, interaction: discord.Interaction, face_id: int, number: int) -> None:
        """A "Correct" button: the modal asking for the name, at once (it is the first response)."""
        async with self._job():
            await interaction.response.send_modal(render.NameModal(face_id, number, on_name=self.name_submitted,
                                                                   on_error=self.interaction_failed))

    async def name_submitted(self, interaction: discord.Interaction, face_id: int, text: str) -> None:
        """The name typed in the modal, as typed: the core reads it (a bare number is one of its guesses)."""
        async with self._job():
            await interaction.response.defer(ephemeral=True, thinking=True)
            ack = await self.core.name_face(interaction_person(interaction), face_id, text, via="button",
                                            chat_id=self._chat_of(interaction))
            await self._followup_text(interaction, ack.text, ephemeral=True)

    async def correct_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps -> "Correct this" on one of the bot's answers: a modal for the face and the name."""
        async with self._job():
            if message.author.id != self.me.id:
                await interaction.response.send_message(texts.NOT_MY_ANSWER, ephemeral=True)
                return
            await interaction.response.send_modal(render.CorrectModal(message.id, on_correct=self.correction_submitted,
                                                                      on_error=self.interaction_failed))

    async def correction_submitted(self, interaction: discord.Interaction, message_id: int, face: str,
                                   name: str) -> None:
        async with self._job():
            await interaction.response.defer(ephemeral=True, thinking=True)
            face, name = face.strip().lstrip("#"), name.strip()
            if face and not face.isdigit():
                await self._followup_text(interaction, texts.BAD_FACE_NUMBER, ephemeral=True)
                return
            ack = await self.core.correct_typed(interaction_person(interaction), self._chat_of(interaction),
                                                str(message_id), int(face) if face else None, name, via="button")
            await self._followup_text(interaction, ack.text, ephemeral=True)

    # --- interactions: commands ----------------------------------------------------------------

    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(render.split_text(texts.HELP)[0], ephemeral=True)

    async def privacy(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(render.split_text(wording.privacy("Discord"))[0], ephemeral=True)

    async def settings(self, interaction: discord.Interaction, mode: str | None, threshold: str | None) -> None:
        """/settings shows them; /settings mode:asked threshold:40% changes them (Manage Server)."""
        async with self._job():
            await interaction.response.defer(ephemeral=True, thinking=True)
            chat_id = self._chat_of(interaction)
            if mode is None and threshold is None:
                view = await self.core.chat_settings(PLATFORM, chat_id)
                await self._followup_text(interaction, texts.settings_view(view, interaction.guild_id is None),
                                          ephemeral=True)
                return
            change = chat_settings.combine(mode, threshold)
            if change is None:
                await self._followup_text(interaction, texts.SETTINGS_USAGE, ephemeral=True)
                return
            ack = await self.core.update_settings(interaction_person(interaction), chat_id, change)
            await self._followup_text(interaction, ack.text, ephemeral=True)

    async def export(self, interaction: discord.Interaction) -> None:
        """/export: the corrections as a training archive, in a message only the admin sees."""
        async with self._job():
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                scope = self.core.export_scope(interaction_person(interaction), self._chat_of(interaction))
            except NotAllowed as refusal:
                await self._followup_text(interaction, str(refusal), ephemeral=True)
                return
            limit = _interaction_upload_limit(interaction)
            async with self.core.export_archive(PLATFORM, scope) as export:
                if export.size > limit:
                    await self._followup_text(interaction, texts.export_too_large(export.size, limit), ephemeral=True)
                    return
                await self._followup_text(interaction, export.summary.describe(), ephemeral=True,
                                          file=discord.File(export.path, filename=export.filename))

    # --- errors --------------------------------------------------------------------------------

    async def _message_failed(self, message: discord.Message, error: Exception) -> None:
        """Log it; tell the channel something went wrong, unless Discord itself is the trouble."""
        log.error("handling message %s failed", message.id, exc_info=error)
        if isinstance(error, discord.HTTPException):
            return
        with contextlib.suppress(discord.HTTPException):
            await self._send_text(message.channel, wording.ERROR, reference=message)

    async def interaction_failed(self, interaction: discord.Interaction, error: Exception) -> None:
        """An interaction whose handler failed: logged, and the person told (privately)."""
        log.error("handling interaction %s failed", interaction.id, exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(wording.ERROR, ephemeral=True)
            else:
                await interaction.response.send_message(wording.ERROR, ephemeral=True)
        except discord.HTTPException as failure:
            log.warning("could not tell about the failure: %s", failure)

    async def command_failed(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self.interaction_failed(interaction, getattr(error, "original", error))


_REPLY_PING = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
_QUIET = discord.AllowedMentions.none()


def _reference(target: discord.Message | discord.PartialMessage | None) -> discord.MessageReference | None:
    """A reply to `target` that is still sent when `target` was deleted meanwhile."""
    return None if target is None else target.to_reference(fail_if_not_exists=False)


def _upload_limit(message: discord.Message) -> int:
    guild = message.guild
    return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT


def _interaction_upload_limit(interaction: discord.Interaction) -> int:
    """What this interaction may attach, as Discord said (discord.py 2.6+), else the common limit."""
    return getattr(interaction, "filesize_limit", None) or DEFAULT_UPLOAD_LIMIT
