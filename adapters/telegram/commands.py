"""Commands: /start, /help, /privacy, and the chat admins' /settings and /export."""

from __future__ import annotations

import logging
from typing import Callable

from telegram import Bot, InputFile, Message, Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes

from adapters.telegram import render, texts
from adapters.telegram.common import PLATFORM, AdapterOptions, arguments, person_of
from adapters.telegram.sending import Sender
from bot import chat_settings, wording
from bot.ports import CorePort, NotAllowed

log = logging.getLogger(__name__)

_ADMIN_STATUSES = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR}


class Commands:
    """The command handlers."""

    def __init__(self, core: CorePort, options: AdapterOptions, send: Sender,
                 username: Callable[[Bot], str]) -> None:
        self.core = core
        self.options = options
        self.send = send
        self.username = username

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        me = self.username(context.bot)
        w = await self.core.words_for(person_of(message), str(message.chat.id))
        text = texts.start(w, me) if message.chat.type == ChatType.PRIVATE else texts.help_group(w, me)
        await self.send.text(context.bot, message.chat.id, text, message.message_id)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        me = self.username(context.bot)
        w = await self.core.words_for(person_of(message), str(message.chat.id))
        text = texts.help_private(w) if message.chat.type == ChatType.PRIVATE else texts.help_group(w, me)
        await self.send.text(context.bot, message.chat.id, text, message.message_id)

    async def privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        w = await self.core.words_for(person_of(message), str(message.chat.id))
        await self.send.text(context.bot, message.chat.id, wording.privacy(w, "Telegram"), message.message_id)

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
        words = arguments(message).split()
        w = await self.core.words_for(person_of(message), chat_id)
        if not words:
            view = await self.core.chat_settings(PLATFORM, chat_id)
            shown = texts.settings_view(w, view, private, self.username(context.bot))
            await self.send.text(context.bot, message.chat.id, shown, message.message_id)
            return
        change = chat_settings.parse_words(words)
        if change is None:
            await self.send.text(context.bot, message.chat.id, texts.settings_usage(w, self.username(context.bot)),
                                 message.message_id)
            return
        person = person_of(message, await self._is_chat_admin(context.bot, message))
        ack = await self.core.update_settings(person, chat_id, change)
        await self.send.text(context.bot, message.chat.id, ack.text, message.message_id)

    async def alias(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/alias Yagami Kou = 八神コウ: another name for a character (the core says who may)."""
        message = update.effective_message
        person = person_of(message, await self._is_chat_admin(context.bot, message))
        ack = await self.core.add_alias(person, str(message.chat.id), arguments(message))
        await self.send.text(context.bot, message.chat.id, ack.text, message.message_id)

    async def export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/export: the corrections as a training archive, sent in the admin's private chat with the bot."""
        message = update.effective_message
        bot = context.bot
        chat = message.chat
        private = chat.type == ChatType.PRIVATE
        person = person_of(message, await self._is_chat_admin(bot, message))
        w = await self.core.words_for(person, str(chat.id))
        try:
            scope = self.core.export_scope(person, str(chat.id))
        except NotAllowed as refusal:
            await self.send.text(bot, chat.id, str(refusal), message.message_id)
            return
        user = message.from_user
        if user is None or message.sender_chat is not None:  # an anonymous admin has no private chat to send to
            await self.send.text(bot, chat.id, texts.export_start_private(w, self.username(bot)), message.message_id)
            return
        async with self.core.export_archive(PLATFORM, scope) as export:
            if export.size > self.options.upload_limit:
                await self.send.text(bot, chat.id, texts.export_too_large(w, export.size, self.options.upload_limit),
                                     message.message_id)
                return
            caption, rest = render.caption_and_rest(export.summary.describe())
            try:
                with export.path.open("rb") as archive:
                    sent = await bot.send_document(user.id, InputFile(archive, filename=export.filename),
                                                   caption=render.escape(caption), parse_mode=ParseMode.HTML)
            except Forbidden:  # the admin never opened a private chat with the bot
                await self.send.text(bot, chat.id, texts.export_start_private(w, self.username(bot)),
                                     message.message_id)
                return
        for piece in rest:
            await self.send.text(bot, user.id, piece, sent.message_id)
        if not private:
            await self.send.text(bot, chat.id, texts.export_sent(w), message.message_id, quiet=True)
