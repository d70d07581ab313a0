"""Pictures: a photo, sticker, animation or image file, /identify and /who, and albums, identified by the
core and answered.

Albums: the photos of one media group arrive as separate messages, and behind a load balancer each may
reach another replica. Each is handed to the core (`album_part`, the message as JSON), which stores it
where every replica sees it; the replica whose part opened the album waits until no new one has come
for `album_wait` seconds (`album_complete`), then identifies them one after the other and answers once: with a media group of the annotated pictures, each captioned with its
own faces (a reply or a reaction on one of them corrects that picture), when two or more have faces;
with one annotated photo (and its buttons) when only one has; with one text when none has. Telegram
allows no buttons under a media group, so an album's corrections go through /wrong and reactions.
An album whose replica died before answering is handed to another one by the core (`answer_albums_with`,
`take_over`), and answered the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import AsyncIterator, Callable, Sequence

from telegram import Bot, Message, ReactionTypeEmoji, Update
from telegram.constants import ChatAction, ChatType, MessageEntityType
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from adapters.telegram import media, texts
from adapters.telegram.common import PLATFORM, AdapterOptions, person_of
from adapters.telegram.network import telegram_is_the_trouble
from adapters.telegram.sending import Sender
from bot import wording
from bot.i18n import words
from bot.adapter_kit import LazySign
from bot.messages import AlbumClaim, AlbumKey, AlbumPart, IncomingImage, Person, Reply, ReplyKind
from bot.ports import CorePort

log = logging.getLogger(__name__)

WORKING_REACTION = "\U0001f440"  # 👀
IDENTIFY_COMMANDS = ("identify", "who")


class Pictures:
    """The picture handlers, and the albums being collected."""

    def __init__(self, core: CorePort, options: AdapterOptions, send: Sender, downloader: media.Downloader,
                 username: Callable[[Bot], str]) -> None:
        self.core = core
        self.options = options
        self.send = send
        self.downloader = downloader
        self.username = username

    def _addressed_to_me(self, message: Message, bot: Bot) -> bool:
        """A caption (or text) that mentions the bot or starts with /identify or /who (addressed to no bot, or
        to this one). With privacy mode on, Telegram delivers such a caption only where the bot is an admin."""
        me = self.username(bot).lower()
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
                w = await self.core.words_for(person_of(message), str(message.chat.id))
                await self.send.text(context.bot, message.chat.id, texts.not_an_image(w), message.message_id)
            return
        asked = private or self._addressed_to_me(message, context.bot)
        if message.media_group_id:
            await self._album_add(context.application, message, asked)
            return
        await self._identify_one(context.bot, message, message, person_of(message), asked)

    async def not_a_picture(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        w = await self.core.words_for(person_of(message), str(message.chat.id))
        await self.send.text(context.bot, message.chat.id, texts.not_an_image(w), message.message_id)

    async def identify_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/identify or /who in reply to a picture (also one quoted from another chat)."""
        message = update.effective_message
        target = message.reply_to_message
        if media.find_image(target) is None:
            external = message.external_reply
            if media.find_image(external) is not None:
                await self._identify_one(context.bot, message, message, person_of(message), True, external)
                return
            w = await self.core.words_for(person_of(message), str(message.chat.id))
            how = texts.identify_how(w, self.username(context.bot), message.chat.type == ChatType.PRIVATE)
            await self.send.text(context.bot, message.chat.id, how, message.message_id)
            return
        await self._identify_one(context.bot, target, message, person_of(message), True)

    async def _identify_one(self, bot: Bot, source: Message, indicator: Message, person: Person, asked: bool,
                            holder: object | None = None) -> None:
        """Identify the picture of `source` (or of `holder`) and answer in reply to `source`."""
        sign = LazySign(lambda: self._working(bot, source.chat.id, indicator.message_id))
        try:
            reply = await self.core.identify(self._incoming(bot, source, holder or source, person, asked, sign))
            if reply is not None:
                await self.send.reply(bot, source.chat.id, source.message_id, reply)
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

    # --- albums --------------------------------------------------------------------------------

    async def _album_add(self, app: Application, message: Message, asked: bool) -> None:
        part = AlbumPart(str(message.message_id), json.dumps(message.to_dict()), asked)
        claim = await self.core.album_part(PLATFORM, str(message.chat.id), str(message.media_group_id), part)
        if claim is not None:  # this part opened the album: this replica answers it
            app.create_task(self._album_when_complete(app.bot, message.chat.id, claim),
                            name=f"album {message.chat.id} {message.media_group_id}")

    def take_over(self, app: Application) -> Callable[[AlbumKey, list[AlbumPart]], None]:
        """What the core calls with an album whose replica died before answering it: answered here, in a task
        the Application tracks (its stop finishes it), as if this replica's part had opened it."""
        def answer(key: AlbumKey, parts: list[AlbumPart]) -> None:
            app.create_task(self._answer_parts(app.bot, int(key.chat_id), parts),
                            name=f"album {key.chat_id} {key.album_id} (taken over)")
        return answer

    async def _album_when_complete(self, bot: Bot, chat_id: int, claim: AlbumClaim) -> None:
        try:
            parts = await self.core.album_complete(claim, self.options.album_wait)
        except Exception:  # noqa: BLE001 - a task, not a handler: PTB's error handler does not see it
            log.exception("collecting an album in %s failed", chat_id)
            return
        await self._answer_parts(bot, chat_id, parts)

    async def _answer_parts(self, bot: Bot, chat_id: int, parts: list[AlbumPart]) -> None:
        messages: list[Message] = []
        try:
            messages = [Message.de_json(json.loads(part.payload), bot) for part in parts]
            if messages:
                await self._answer_album(bot, messages, any(part.asked for part in parts))
        except Exception as error:  # noqa: BLE001 - a task, not a handler: PTB's error handler does not see it
            log.exception("answering an album in %s failed", chat_id)
            if telegram_is_the_trouble(error) or not messages:
                return  # flooded or unreachable: an apology would not get through (or would prolong a ban)
            with contextlib.suppress(TelegramError):
                w = await self.core.words_for(person_of(messages[0]), str(chat_id))
                await self.send.text(bot, chat_id, wording.error(w), messages[0].message_id)

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
                await self.send.reply(bot, chat.id, message.message_id, reply)
                return
            with_faces = [(i, m, r) for i, m, r in results if r.kind == ReplyKind.FACES and r.annotated_png]
            w = words(results[0][2].language)
            notes = [wording.picture_note(w, i, r.text) for i, m, r in results if (i, m, r) not in with_faces]
            if not with_faces:
                await self.send.reply(bot, chat.id, first.message_id, Reply(ReplyKind.NO_FACE, "\n".join(notes),
                                                                          language=w.language))
            elif len(with_faces) == 1:
                index, message, reply = with_faces[0]
                text = "\n".join([wording.picture_note(w, index, reply.text)] + notes)
                await self.send.reply(bot, chat.id, message.message_id, dataclasses.replace(reply, text=text))
            else:
                await self.send.album(bot, chat.id, first.message_id, with_faces, notes)
        finally:
            await sign.close()
