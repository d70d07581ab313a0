"""Sending the core's answers within Telegram's limits: a picture with its caption and buttons (fitted to
the photo rules by `photo_fit`, a file if still refused), an album (picture by picture if refused), a
text cut to size, an acknowledgement; telling the core which message carries which prediction, and that
a group became a supergroup when a send finds out (ChatMigrated: sent again to the new id)."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Sequence, TypeVar

from telegram import Bot, ForceReply, InlineKeyboardMarkup, InputFile, InputMediaPhoto, Message, User
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, TimedOut

from adapters.telegram import photo_fit, render
from adapters.telegram.common import PLATFORM, AdapterOptions, replying_to
from bot import wording
from bot.i18n import words
from bot.messages import Ack, Reply, ReplyKind
from bot.ports import CorePort

log = logging.getLogger(__name__)
T = TypeVar("T")


class Sender:
    """Sends on the bot it is handed; remembers the messages that carry a prediction in the core."""

    def __init__(self, core: CorePort, options: AdapterOptions) -> None:
        self.core = core
        self.options = options

    async def reply(self, bot: Bot, chat_id: int, reply_to: int, reply: Reply) -> None:
        """An answer to one picture: the annotated photo with its caption and buttons, or a text."""
        try:
            if reply.kind == ReplyKind.FACES and reply.picture_png:
                caption, rest = render.caption_and_rest(reply.text)
                markup = render.keyboard(reply.faces, self.options.keyboard_faces, words(reply.language))
                sent = await self._send_picture(bot, chat_id, reply.picture_png, caption, markup, reply_to)
                await self._remember(reply, sent)
                for piece in rest:
                    await self._remember(reply, await self.text(bot, sent.chat_id, piece, sent.message_id))
            else:
                for piece in render.split_text(reply.text, render.TEXT_LIMIT):
                    sent = await self.text(bot, chat_id, piece, reply_to)
                    chat_id = sent.chat_id  # a group that became a supergroup: the rest goes there too
                    await self._remember(reply, sent)
        except TimedOut:
            log.warning("the answer in %s timed out: it may have been posted; not sending it again", chat_id)
        except (Forbidden, NetworkError) as error:
            log.warning("could not answer in %s: %s", chat_id, error)

    async def _remember(self, reply: Reply, sent: Message) -> None:
        """Tell the core which message carries the prediction, so replies and reactions on it find it."""
        if reply.prediction_id is not None:
            await self.core.reply_sent(reply.prediction_id, PLATFORM, str(sent.chat_id), str(sent.message_id))

    async def _in_chat(self, chat_id: int, send: Callable[[int], Awaitable[T]]) -> T:
        """`send(chat_id)`; where the group has become a supergroup (ChatMigrated: Telegram posted nothing),
        the core moves the chat's settings and the message goes to the supergroup's id."""
        try:
            return await send(chat_id)
        except ChatMigrated as moved:
            log.info("chat %s is now %s: sending there", chat_id, moved.new_chat_id)
            await self.core.chat_moved(PLATFORM, str(chat_id), str(moved.new_chat_id))
            return await send(moved.new_chat_id)

    async def text(self, bot: Bot, chat_id: int, text: str, reply_to: int | None, *,
                   markup: object | None = None, quiet: bool = False, html_prefix: str = "") -> Message:
        return await self._in_chat(chat_id, lambda chat: bot.send_message(
            chat, html_prefix + render.escape(text), parse_mode=ParseMode.HTML, reply_markup=markup,
            reply_parameters=replying_to(reply_to) if reply_to else None, disable_notification=quiet or None))

    async def _photo(self, png: bytes) -> photo_fit.FittedPhoto:
        """The annotated picture within sendPhoto's rules (bytes, sides, ratio), off the event loop."""
        return await asyncio.to_thread(photo_fit.fit_photo, png, self.options.photo_limit)

    async def _send_picture(self, bot: Bot, chat_id: int, png: bytes, caption: str,
                            markup: InlineKeyboardMarkup | None, reply_to: int,
                            photo: photo_fit.FittedPhoto | None = None) -> Message:
        photo = photo or await self._photo(png)
        try:
            return await self._in_chat(chat_id, lambda chat: bot.send_photo(
                chat, InputFile(photo.data, filename=photo.filename), caption=render.escape(caption),
                parse_mode=ParseMode.HTML, reply_markup=markup, reply_parameters=replying_to(reply_to)))
        except BadRequest as error:  # refused all the same (a rule the fitting does not know): a file
            data, filename = photo_fit.document_bytes(png, photo, self.options.upload_limit)
            log.info("sendPhoto refused (%s): sending the annotated picture as a file", error)
            return await self._in_chat(chat_id, lambda chat: bot.send_document(
                chat, InputFile(data, filename=filename), caption=render.escape(caption), parse_mode=ParseMode.HTML,
                reply_markup=markup, reply_parameters=replying_to(reply_to)))

    async def album(self, bot: Bot, chat_id: int, reply_to: int,
                    answers: Sequence[tuple[int, Message, Reply]], notes: Sequence[str]) -> None:
        captions, overflow = [], []
        for position, (index, _, reply) in enumerate(answers):
            text = wording.picture_note(words(reply.language), index, reply.text)
            if position == 0 and notes:
                text = "\n".join([text, *notes])
            caption, rest = render.caption_and_rest(text)
            captions.append(caption)
            overflow.append(rest)
        fitted = [await self._photo(reply.picture_png) for _, _, reply in answers]
        try:
            sent: list[Message] = []
            for start in range(0, len(answers), 10):  # at most 10 pictures in one media group
                sent += await self._album_part(bot, chat_id, reply_to, answers[start:start + 10],
                                               captions[start:start + 10], fitted[start:start + 10])
            for (_, _, reply), message, rest in zip(answers, sent, overflow):
                await self._remember(reply, message)
                for piece in rest:
                    await self._remember(reply, await self.text(bot, message.chat_id, piece, message.message_id))
        except TimedOut:
            log.warning("the album answer in %s timed out: it may have been posted; not sending it again", chat_id)
        except (Forbidden, NetworkError) as error:
            log.warning("could not answer an album in %s: %s", chat_id, error)

    async def _album_part(self, bot: Bot, chat_id: int, reply_to: int, answers: Sequence[tuple[int, Message, Reply]],
                          captions: Sequence[str], photos: Sequence[photo_fit.FittedPhoto]) -> list[Message]:
        """One media group (2 to 10 pictures); if Telegram refuses it, each picture on its own (a photo, or
        a file), so that one picture it will not take does not cost the others their answer."""
        if len(answers) > 1:
            media = [InputMediaPhoto(InputFile(photo.data, filename=photo.filename), caption=render.escape(caption),
                                     parse_mode=ParseMode.HTML) for photo, caption in zip(photos, captions)]
            try:
                return list(await self._in_chat(chat_id, lambda chat: bot.send_media_group(
                    chat, media, reply_parameters=replying_to(reply_to))))
            except BadRequest as error:  # not posted: nothing of the group is in the chat
                log.info("sendMediaGroup refused (%s): sending the pictures one by one", error)
        return [await self._send_picture(bot, chat_id, reply.picture_png, caption, None, reply_to, photo)
                for (_, _, reply), caption, photo in zip(answers, captions, photos)]

    async def ack(self, bot: Bot, chat_id: int, reply_to: int, ack: Ack, mention: User | None = None) -> None:
        """A short acknowledgement, silent; where the bot needs a name back, a ForceReply for that person."""
        wants_answer = ack.wants_answer
        markup = ForceReply(selective=True, input_field_placeholder=words(ack.language).gettext("Name")) \
            if wants_answer else None
        prefix = f"{render.mention(mention)}: " if (mention is not None and wants_answer) else ""
        try:
            await self.text(bot, chat_id, ack.text, reply_to, markup=markup, quiet=not wants_answer,
                            html_prefix=prefix)
        except TimedOut:
            log.warning("an acknowledgement in %s timed out; not sending it again", chat_id)
