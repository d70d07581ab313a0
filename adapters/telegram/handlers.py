"""Telegram updates onto the core's use cases, and the core's replies back onto Telegram.

Nothing here decides what a face is, who may correct it or how an answer is worded: that is `bot`.
This module knows how Telegram delivers pictures, commands, button presses and reactions, and how
to send an answer within Telegram's limits.

Albums: the photos of one media group arrive as separate messages. They are collected per
(chat, media_group_id) until no new one has come for `album_wait` seconds, then identified one after
the other and answered once: with a media group of the annotated pictures, each captioned with its
own faces (a reply or a reaction on one of them corrects that picture), when two or more have faces;
with one annotated photo (and its buttons) when only one has; with one text when none has. Telegram
allows no buttons under a media group, so an album's corrections go through /wrong and reactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Sequence

from PIL import Image
from telegram import (Bot, Chat, ForceReply, InlineKeyboardMarkup, InputFile, InputMediaPhoto, Message,
                      ReactionTypeEmoji, ReplyParameters, Update, User)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, FileSizeLimit, MessageEntityType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut
from telegram.ext import (Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler,
                          MessageReactionHandler, filters)

from adapters.telegram import media, render, texts
from bot import chat_settings, wording
from bot.adapter_kit import AckBatcher, LazySign
from bot.messages import Ack, IncomingImage, Person, Reply, ReplyKind
from bot.ports import CorePort, NotAllowed

log = logging.getLogger(__name__)

PLATFORM = "telegram"
WORKING_REACTION = "\U0001f440"  # 👀
IDENTIFY_COMMANDS = ("identify", "who")
_ADMIN_STATUSES = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR}


@dataclass
class AdapterOptions:
    """How the adapter behaves; the defaults are for production, tests shorten the waits."""

    album_wait: float = 1.5           # quiet time that closes an album
    ack_window: float = 4.0           # reaction acknowledgements in a chat within this window go in one message
    ack_lines: int = 8                # at most this many lines in one acknowledgement
    keyboard_faces: int = 5           # faces that get correction buttons
    chat_action_every: float = 4.5    # a chat action lasts 5 s: repeat it while working
    max_download_bytes: int | None = None  # None: 20 MB on Telegram's servers, no limit of its own in local mode
    upload_limit: int = FileSizeLimit.FILESIZE_UPLOAD      # 50 MB: what a bot may send (exports)
    photo_limit: int = FileSizeLimit.PHOTOSIZE_UPLOAD      # 10 MB: larger annotated pictures go as JPEG
    # network (see adapters.telegram.network)
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    write_timeout: float = 30.0       # uploads
    pool_timeout: float = 5.0
    rate_retries: int = 3             # 429s waited out per request
    network_retries: int = 2          # safe retries after a connection or server failure
    retry_delay: float = 1.0


@dataclass
class _Album:
    messages: list[Message] = field(default_factory=list)
    asked: bool = False
    last: float = 0.0


def person_of(message: Message, is_chat_admin: bool = False) -> Person:
    """Who sent a message; an anonymous group admin is the group itself (Telegram hides who it was)."""
    private = message.chat.type == ChatType.PRIVATE
    if message.sender_chat is not None:
        return Person(PLATFORM, str(message.sender_chat.id), is_chat_admin, private)
    return Person(PLATFORM, str(message.from_user.id) if message.from_user else "0", is_chat_admin, private)


def _user_person(user: User) -> Person:
    return Person(PLATFORM, str(user.id))


def _arguments(message: Message) -> str:
    """What follows the command, newlines kept (`context.args` would split on every blank)."""
    text = message.text or message.caption or ""
    return text.partition(" ")[2] if " " in text.split("\n", 1)[0] else text.partition("\n")[2]


def _reply_to(message_id: int) -> ReplyParameters:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


class TelegramHandlers:
    """The handlers of one Application, and the little state they share (albums, pending acks)."""

    def __init__(self, core: CorePort, options: AdapterOptions | None = None, *, bot_username: str | None = None,
                 local_mode: bool = False) -> None:
        self.core = core
        self.options = options or AdapterOptions()
        self._bot_username = bot_username.lstrip("@") if bot_username else None
        download = self.options.max_download_bytes
        if download is None:
            download = None if local_mode else media.CLOUD_DOWNLOAD_LIMIT
        limit = core.max_image_bytes if download is None else min(download, core.max_image_bytes)
        self.downloader = media.Downloader(limit)
        self._albums: dict[tuple[int, str], _Album] = {}
        self._app: Application | None = None
        self._acks: AckBatcher[int] = AckBatcher(self._send_acks, self._spawn, window=lambda: self.options.ack_window,
                                                 lines=self.options.ack_lines)

    # --- wiring ------------------------------------------------------------------------------

    def register(self, app: Application) -> None:
        self._app = app
        new = filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler("start", self.start, filters=new))
        app.add_handler(CommandHandler("help", self.help, filters=new))
        app.add_handler(CommandHandler("privacy", self.privacy, filters=new))
        app.add_handler(CommandHandler(list(IDENTIFY_COMMANDS), self.identify_command, filters=new))
        app.add_handler(CommandHandler("wrong", self.wrong, filters=new))
        app.add_handler(CommandHandler("settings", self.settings, filters=new))
        app.add_handler(CommandHandler("export", self.export, filters=new))
        pictures = filters.PHOTO | filters.Sticker.ALL | filters.ANIMATION | filters.Document.ALL
        app.add_handler(MessageHandler(new & pictures, self.picture))
        app.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, self.text))
        app.add_handler(MessageHandler(new & filters.ChatType.PRIVATE & (filters.VIDEO | filters.VIDEO_NOTE
                                                                         | filters.VOICE | filters.AUDIO),
                                       self.not_a_picture))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_handler(MessageReactionHandler(
            self.reaction, message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_UPDATED))
        app.add_error_handler(self.on_error)

    def username(self, bot: Bot) -> str:
        return (self._bot_username or bot.username or "").lower()

    # --- pictures ------------------------------------------------------------------------------

    def _addressed_to_me(self, message: Message, bot: Bot) -> bool:
        """A caption (or text) that mentions the bot or starts with /identify or /who."""
        me = self.username(bot)
        entities = message.parse_caption_entities() if message.caption else message.parse_entities()
        for entity, text in entities.items():
            if entity.type == MessageEntityType.MENTION and me and text[1:].lower() == me:
                return True
            if entity.type == MessageEntityType.TEXT_MENTION and entity.user and entity.user.id == bot.id:
                return True
            if entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0:
                name, _, target = text[1:].partition("@")
                if name.lower() in IDENTIFY_COMMANDS and (not target or target.lower() == me):
                    return True
        return False

    async def picture(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        private = message.chat.type == ChatType.PRIVATE
        image = media.find_image(message)
        if image is None:  # a document that is not a picture
            if private:
                await self._send_text(context.bot, message.chat.id, texts.NOT_AN_IMAGE, message.message_id)
            return
        asked = private or self._addressed_to_me(message, context.bot)
        if message.media_group_id:
            self._album_add(context.application, message, asked)
            return
        await self._identify_one(context.bot, message, message, person_of(message), asked)

    async def not_a_picture(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        await self._send_text(context.bot, message.chat.id, texts.NOT_AN_IMAGE, message.message_id)

    async def identify_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/identify or /who in reply to a picture (also one quoted from another chat)."""
        message = update.effective_message
        target = message.reply_to_message
        if media.find_image(target) is None:
            external = message.external_reply
            if media.find_image(external) is not None:
                await self._identify_one(context.bot, message, message, person_of(message), True, external)
                return
            await self._send_text(context.bot, message.chat.id, texts.IDENTIFY_HOW, message.message_id)
            return
        await self._identify_one(context.bot, target, message, person_of(message), True)

    async def _identify_one(self, bot: Bot, source: Message, indicator: Message, person: Person, asked: bool,
                            holder: object | None = None) -> None:
        """Identify the picture of `source` (or of `holder`) and answer in reply to `source`."""
        sign = LazySign(lambda: self._working(bot, source.chat.id, indicator.message_id))
        try:
            reply = await self.core.identify(self._incoming(bot, source, holder or source, person, asked, sign))
            if reply is not None:
                await self._send_reply(bot, source.chat.id, source.message_id, reply)
        finally:
            await sign.close()

    def _incoming(self, bot: Bot, source: Message, holder: object, person: Person, asked: bool,
                  sign: LazySign) -> IncomingImage:
        """The picture of `holder`, for the core, which fetches it only when it answers."""
        image = media.find_image(holder)
        private = source.chat.type == ChatType.PRIVATE

        async def fetch() -> bytes:
            return await self.downloader.fetch(bot, image)

        return IncomingImage(PLATFORM, str(source.chat.id), str(source.message_id), person, asked=asked or private,
                             is_private=private, fetch=fetch, working=sign)

    @contextlib.asynccontextmanager
    async def _working(self, bot: Bot, chat_id: int, message_id: int) -> AsyncIterator[None]:
        """👀 on the user's message while the bot works (a chat action where reactions are not allowed)."""
        reacted, action = False, None
        try:
            await bot.set_message_reaction(chat_id, message_id, ReactionTypeEmoji(WORKING_REACTION))
            reacted = True
        except TelegramError as error:
            log.debug("no working reaction in %s (%s): chat action instead", chat_id, error)
            action = asyncio.create_task(self._keep_uploading(bot, chat_id))
        try:
            yield
        finally:
            if action is not None:
                action.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await action
            if reacted:
                try:
                    await bot.set_message_reaction(chat_id, message_id, None)
                except TelegramError as error:
                    log.debug("could not remove the working reaction in %s: %s", chat_id, error)

    async def _keep_uploading(self, bot: Bot, chat_id: int) -> None:
        while True:
            try:
                await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
            except TelegramError as error:
                log.debug("chat action in %s failed: %s", chat_id, error)
                return
            await asyncio.sleep(self.options.chat_action_every)

    # --- sending answers -----------------------------------------------------------------------

    async def _send_reply(self, bot: Bot, chat_id: int, reply_to: int, reply: Reply) -> None:
        """An answer to one picture: the annotated photo with its caption and buttons, or a text."""
        try:
            if reply.kind == ReplyKind.FACES and reply.annotated_png:
                caption, rest = render.caption_and_rest(reply.text)
                markup = render.keyboard(reply.faces, self.options.keyboard_faces)
                sent = await self._send_picture(bot, chat_id, reply.annotated_png, caption, markup, reply_to)
                await self._remember(reply, chat_id, sent)
                for piece in rest:
                    await self._remember(reply, chat_id, await self._send_text(bot, chat_id, piece, sent.message_id))
            else:
                for piece in render.split_text(reply.text, render.TEXT_LIMIT):
                    await self._remember(reply, chat_id, await self._send_text(bot, chat_id, piece, reply_to))
        except TimedOut:
            log.warning("the answer in %s timed out: it may have been posted; not sending it again", chat_id)
        except (Forbidden, NetworkError) as error:
            log.warning("could not answer in %s: %s", chat_id, error)

    async def _remember(self, reply: Reply, chat_id: int, sent: Message) -> None:
        """Tell the core which message carries the prediction, so replies and reactions on it find it."""
        if reply.prediction_id is not None:
            await self.core.reply_sent(reply.prediction_id, PLATFORM, str(chat_id), str(sent.message_id))

    async def _send_text(self, bot: Bot, chat_id: int, text: str, reply_to: int | None, *,
                         markup: object | None = None, quiet: bool = False, html_prefix: str = "") -> Message:
        return await bot.send_message(
            chat_id, html_prefix + render.escape(text), parse_mode=ParseMode.HTML, reply_markup=markup,
            reply_parameters=_reply_to(reply_to) if reply_to else None, disable_notification=quiet or None)

    async def _photo_bytes(self, png: bytes) -> tuple[bytes, str]:
        """PNG as is; over Telegram's 10 MB photo limit, a JPEG of it."""
        if len(png) <= self.options.photo_limit:
            return png, "faces.png"

        def to_jpeg() -> bytes:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(png)).convert("RGB").save(buffer, "JPEG", quality=90)
            return buffer.getvalue()

        return await asyncio.to_thread(to_jpeg), "faces.jpg"

    async def _send_picture(self, bot: Bot, chat_id: int, png: bytes, caption: str,
                            markup: InlineKeyboardMarkup | None, reply_to: int) -> Message:
        data, filename = await self._photo_bytes(png)
        try:
            return await bot.send_photo(chat_id, InputFile(data, filename=filename), caption=render.escape(caption),
                                        parse_mode=ParseMode.HTML, reply_markup=markup,
                                        reply_parameters=_reply_to(reply_to))
        except BadRequest as error:  # a picture Telegram will not show as a photo (size, proportions): a file
            log.info("sendPhoto refused (%s): sending the annotated picture as a file", error)
            return await bot.send_document(chat_id, InputFile(png, filename="faces.png"),
                                           caption=render.escape(caption), parse_mode=ParseMode.HTML,
                                           reply_markup=markup, reply_parameters=_reply_to(reply_to))

    # --- albums --------------------------------------------------------------------------------

    def _album_add(self, app: Application, message: Message, asked: bool) -> None:
        key = (message.chat.id, message.media_group_id)
        album = self._albums.get(key)
        if album is None:
            album = self._albums[key] = _Album()
            app.create_task(self._album_when_complete(app.bot, key), name=f"album {key}")
        album.messages.append(message)
        album.asked = album.asked or asked
        album.last = time.monotonic()

    async def _album_when_complete(self, bot: Bot, key: tuple[int, str]) -> None:
        album = self._albums[key]
        while (wait := album.last + self.options.album_wait - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        del self._albums[key]
        try:
            await self._answer_album(bot, sorted(album.messages, key=lambda m: m.message_id), album.asked)
        except Exception:  # noqa: BLE001 - a task, not a handler: PTB's error handler does not see it
            log.exception("answering an album in %s failed", key[0])
            with contextlib.suppress(TelegramError):
                await self._send_text(bot, key[0], wording.ERROR, album.messages[0].message_id)

    async def _answer_album(self, bot: Bot, messages: Sequence[Message], asked: bool) -> None:
        first = messages[0]
        chat = first.chat
        person = person_of(first)
        sign = LazySign(lambda: self._working(bot, chat.id, first.message_id))
        try:
            results: list[tuple[int, Message, Reply]] = []
            for index, message in enumerate(messages, start=1):
                reply = await self.core.identify(self._incoming(bot, message, message, person, asked, sign))
                if reply is not None:
                    results.append((index, message, reply))
            if not results:
                return
            if len(results) == 1:  # an album of one answered picture is answered like a single picture
                index, message, reply = results[0]
                await self._send_reply(bot, chat.id, message.message_id, reply)
                return
            with_faces = [(i, m, r) for i, m, r in results if r.kind == ReplyKind.FACES and r.annotated_png]
            notes = [wording.picture_note(i, r.text) for i, m, r in results if (i, m, r) not in with_faces]
            if not with_faces:
                await self._send_reply(bot, chat.id, first.message_id, Reply(ReplyKind.NO_FACE, "\n".join(notes)))
            elif len(with_faces) == 1:
                index, message, reply = with_faces[0]
                text = "\n".join([wording.picture_note(index, reply.text)] + notes)
                await self._send_reply(bot, chat.id, message.message_id, dataclasses.replace(reply, text=text))
            else:
                await self._send_album(bot, chat.id, first.message_id, with_faces, notes)
        finally:
            await sign.close()

    async def _send_album(self, bot: Bot, chat_id: int, reply_to: int,
                          answers: Sequence[tuple[int, Message, Reply]], notes: Sequence[str]) -> None:
        captions, overflow = [], []
        for position, (index, _, reply) in enumerate(answers):
            text = wording.picture_note(index, reply.text)
            if position == 0 and notes:
                text = "\n".join([text, *notes])
            caption, rest = render.caption_and_rest(text)
            captions.append(caption)
            overflow.append(rest)
        photos = []
        for (_, _, reply), caption in zip(answers, captions):
            data, filename = await self._photo_bytes(reply.annotated_png)
            photos.append(InputMediaPhoto(InputFile(data, filename=filename), caption=render.escape(caption),
                                          parse_mode=ParseMode.HTML))
        try:
            sent: list[Message] = []
            for start in range(0, len(photos), 10):  # at most 10 pictures in one media group
                sent += await bot.send_media_group(chat_id, photos[start:start + 10],
                                                   reply_parameters=_reply_to(reply_to))
            for (_, _, reply), message, rest in zip(answers, sent, overflow):
                await self._remember(reply, chat_id, message)
                for piece in rest:
                    await self._remember(reply, chat_id, await self._send_text(bot, chat_id, piece, message.message_id))
        except TimedOut:
            log.warning("the album answer in %s timed out: it may have been posted; not sending it again", chat_id)
        except (Forbidden, NetworkError) as error:
            log.warning("could not answer an album in %s: %s", chat_id, error)

    # --- corrections ---------------------------------------------------------------------------

    async def wrong(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/wrong [n] [name] in reply to one of the bot's answers."""
        message = update.effective_message
        target = message.reply_to_message
        if target is None:
            await self._send_text(context.bot, message.chat.id, wording.WRONG_HOW, message.message_id)
            return
        ack = await self.core.wrong_command(person_of(message), str(message.chat.id), str(target.message_id),
                                            _arguments(message))
        await self._send_ack(context.bot, message.chat.id, message.message_id, ack)

    async def _send_ack(self, bot: Bot, chat_id: int, reply_to: int, ack: Ack, mention: User | None = None) -> None:
        """A short acknowledgement, silent; where the bot needs a name back, a ForceReply for that person."""
        wants_answer = ack.wants_answer
        markup = ForceReply(selective=True, input_field_placeholder="Name") if wants_answer else None
        prefix = f"{render.mention(mention)}: " if (mention is not None and wants_answer) else ""
        try:
            await self._send_text(bot, chat_id, ack.text, reply_to, markup=markup, quiet=not wants_answer,
                                  html_prefix=prefix)
        except TimedOut:
            log.warning("an acknowledgement in %s timed out; not sending it again", chat_id)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A name the bot asked for (in a group: a reply to the bot), or chat in a private chat."""
        message = update.effective_message
        private = message.chat.type == ChatType.PRIVATE
        replied = message.reply_to_message
        if not private and not (replied and replied.from_user and replied.from_user.id == context.bot.id):
            return  # group chatter: not for the bot
        ack = await self.core.answer_question(person_of(message), str(message.chat.id), message.text)
        if ack is None:
            if private:
                await self._send_text(context.bot, message.chat.id, texts.SEND_A_PICTURE, message.message_id)
            return
        await self._send_ack(context.bot, message.chat.id, message.message_id, ack)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A correction button; every press is answered, whatever happens."""
        query = update.callback_query
        answered = False
        try:
            pressed = render.parse_press(query.data)
            if pressed is None or query.message is None:
                await query.answer(texts.STALE_BUTTON)
                answered = True
                return
            face_id, choice = pressed
            chat_id = query.message.chat.id
            ack = await self.core.press(_user_person(query.from_user), str(chat_id), face_id, choice, via="button")
            await query.answer(render.toast(ack.text), show_alert=not ack.ok)
            answered = True
            if ack.asks_for_name:  # the name comes back as a reply: ask in the chat, to that person
                await self._send_ack(context.bot, chat_id, query.message.message_id, ack, mention=query.from_user)
        finally:
            if not answered:
                with contextlib.suppress(TelegramError):
                    await query.answer(texts.ERROR_SHORT, show_alert=True)

    async def reaction(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reaction added to a message; the core says whether it is a correction of an answer."""
        reaction = update.message_reaction
        user = reaction.user
        if user is None or user.id == context.bot.id:  # anonymous (a channel or an anonymous admin), or ours
            return
        old = {r.emoji for r in reaction.old_reaction if isinstance(r, ReactionTypeEmoji)}
        added = [r.emoji for r in reaction.new_reaction if isinstance(r, ReactionTypeEmoji) and r.emoji not in old]
        chat_id = reaction.chat.id
        for emoji in added:
            ack = await self.core.react(_user_person(user), str(chat_id), str(reaction.message_id), emoji)
            if ack is None or ack.quiet:
                continue  # an emoji that means nothing, or a message that is not an answer: stay quiet
            if ack.wants_answer:
                await self._send_ack(context.bot, chat_id, reaction.message_id, ack, mention=user)
            else:
                self._acks.add(chat_id, reaction.message_id, ack.text)

    def _spawn(self, coroutine) -> None:  # noqa: ANN001 - a coroutine, run as the Application's task
        assert self._app is not None
        self._app.create_task(coroutine, name="acks")

    async def _send_acks(self, chat_id: int, reply_to: int, text: str) -> None:
        assert self._app is not None
        await self._send_text(self._app.bot, chat_id, text, reply_to, quiet=True)

    # --- commands ------------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        text = texts.START if message.chat.type == ChatType.PRIVATE else texts.HELP_GROUP
        await self._send_text(context.bot, message.chat.id, text, message.message_id)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        text = texts.HELP_PRIVATE if message.chat.type == ChatType.PRIVATE else texts.HELP_GROUP
        await self._send_text(context.bot, message.chat.id, text, message.message_id)

    async def privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        await self._send_text(context.bot, message.chat.id, wording.privacy("Telegram"), message.message_id)

    async def _is_chat_admin(self, bot: Bot, message: Message) -> bool:
        """Whether Telegram says the sender is an admin of this group (a private chat: the core's rule)."""
        chat = message.chat
        if chat.type == ChatType.PRIVATE:
            return False
        if message.sender_chat is not None and message.sender_chat.id == chat.id:
            return True  # an anonymous admin writes as the group itself
        if message.from_user is None:
            return False
        try:
            member = await bot.get_chat_member(chat.id, message.from_user.id)
        except TelegramError as error:
            log.warning("could not check the admins of %s: %s", chat.id, error)
            return False
        return member.status in _ADMIN_STATUSES

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/settings shows them; /settings mode all|asked, /settings threshold 40%|0.4|default change them."""
        message = update.effective_message
        chat_id = str(message.chat.id)
        private = message.chat.type == ChatType.PRIVATE
        words = _arguments(message).lower().split()
        if not words:
            view = await self.core.chat_settings(PLATFORM, chat_id)
            await self._send_text(context.bot, message.chat.id, texts.settings_view(view, private), message.message_id)
            return
        change = chat_settings.parse_words(words)
        if change is None:
            await self._send_text(context.bot, message.chat.id, texts.SETTINGS_USAGE, message.message_id)
            return
        person = person_of(message, await self._is_chat_admin(context.bot, message))
        ack = await self.core.update_settings(person, chat_id, change)
        await self._send_text(context.bot, message.chat.id, ack.text, message.message_id)

    async def export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/export: the corrections as a training archive, sent in the admin's private chat with the bot."""
        message = update.effective_message
        bot = context.bot
        chat = message.chat
        private = chat.type == ChatType.PRIVATE
        person = person_of(message, await self._is_chat_admin(bot, message))
        try:
            scope = self.core.export_scope(person, str(chat.id))
        except NotAllowed as refusal:
            await self._send_text(bot, chat.id, str(refusal), message.message_id)
            return
        user = message.from_user
        if user is None or message.sender_chat is not None:  # an anonymous admin has no private chat to send to
            await self._send_text(bot, chat.id, texts.export_start_private(self.username(bot)), message.message_id)
            return
        async with self.core.export_archive(PLATFORM, scope) as export:
            if export.size > self.options.upload_limit:
                await self._send_text(bot, chat.id, texts.export_too_large(export.size, self.options.upload_limit),
                                      message.message_id)
                return
            caption, rest = render.caption_and_rest(export.summary.describe())
            try:
                with export.path.open("rb") as archive:
                    sent = await bot.send_document(user.id, InputFile(archive, filename=export.filename),
                                                   caption=render.escape(caption), parse_mode=ParseMode.HTML)
            except Forbidden:  # the admin never opened a private chat with the bot
                await self._send_text(bot, chat.id, texts.export_start_private(self.username(bot)),
                                      message.message_id)
                return
        for piece in rest:
            await self._send_text(bot, user.id, piece, sent.message_id)
        if not private:
            await self._send_text(bot, chat.id, texts.EXPORT_SENT, message.message_id, quiet=True)

    # --- errors --------------------------------------------------------------------------------

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log it; tell the person something went wrong, unless Telegram itself is the trouble."""
        error = context.error
        log.error("handling an update failed", exc_info=error)
        if isinstance(error, NetworkError) or not isinstance(update, Update):
            return  # a timeout may have posted already, and a second try would not get through either
        try:
            if update.callback_query is not None:
                return  # the button handler answers every press itself
            message = update.effective_message
            if message is not None and update.message_reaction is None:
                await self._send_text(context.bot, message.chat.id, wording.ERROR, message.message_id)
        except TelegramError as failure:
            log.warning("could not tell the chat about the error: %s", failure)

