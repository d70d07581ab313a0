"""Telegram updates onto the core's use cases, and the core's replies back onto Telegram.

Nothing here decides what a face is, who may correct it or how an answer is worded: that is `bot`.
The handlers are grouped by job, each a class whose methods are PTB callbacks: `pictures` (pictures,
/identify, albums), `corrections` (/wrong, asked-for names, buttons, reactions), `commands` (/start,
/help, /privacy, /settings, /export) and `chats` (a group that became a supergroup); `sending` sends
answers within Telegram's limits. This module builds them and registers them on the Application, in the
order PTB tries them, with the error handler.
"""

from __future__ import annotations

import logging

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import (Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler,
                          MessageReactionHandler, filters)

from adapters.telegram import media
from adapters.telegram.chats import Chats
from adapters.telegram.commands import Commands
from adapters.telegram.common import PLATFORM, AdapterOptions, person_of
from adapters.telegram.corrections import Corrections
from adapters.telegram.network import telegram_is_the_trouble
from adapters.telegram.pictures import IDENTIFY_COMMANDS, WORKING_REACTION, Pictures
from adapters.telegram.sending import Sender
from bot import wording
from bot.i18n import words
from bot.ports import CorePort

log = logging.getLogger(__name__)

__all__ = ["AdapterOptions", "IDENTIFY_COMMANDS", "PLATFORM", "TelegramHandlers", "WORKING_REACTION", "person_of"]


class TelegramHandlers:
    """The handlers of one Application, by job, and what they share (the core, the options, the sender)."""

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
        self.send = Sender(core, self.options)
        self.pictures = Pictures(core, self.options, self.send, self.downloader, self.username)
        self.corrections = Corrections(core, self.options, self.send)
        self.commands = Commands(core, self.options, self.send, self.username)
        self.chats = Chats(core)

    # --- wiring ------------------------------------------------------------------------------

    def register(self, app: Application) -> None:
        self.corrections.bind(app)
        new = filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler("start", self.commands.start, filters=new))
        app.add_handler(CommandHandler("help", self.commands.help, filters=new))
        app.add_handler(CommandHandler("privacy", self.commands.privacy, filters=new))
        app.add_handler(CommandHandler(list(IDENTIFY_COMMANDS), self.pictures.identify_command, filters=new))
        app.add_handler(CommandHandler("wrong", self.corrections.wrong, filters=new))
        app.add_handler(CommandHandler("settings", self.commands.settings, filters=new))
        app.add_handler(CommandHandler("export", self.commands.export, filters=new))
        app.add_handler(CommandHandler("alias", self.commands.alias, filters=new))
        pictures = filters.PHOTO | filters.Sticker.ALL | filters.ANIMATION | filters.Document.ALL
        app.add_handler(MessageHandler(new & pictures, self.pictures.picture))
        app.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, self.corrections.text))
        app.add_handler(MessageHandler(new & filters.ChatType.PRIVATE & (filters.VIDEO | filters.VIDEO_NOTE
                                                                         | filters.VOICE | filters.AUDIO),
                                       self.pictures.not_a_picture))
        app.add_handler(MessageHandler(new & filters.StatusUpdate.MIGRATE, self.chats.migrated))
        app.add_handler(CallbackQueryHandler(self.corrections.button))
        app.add_handler(MessageReactionHandler(
            self.corrections.reaction, message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_UPDATED))
        app.add_error_handler(self.on_error)

    def username(self, bot: Bot) -> str:
        """The bot's @name as users type it (without the @); "" before getMe."""
        return self._bot_username or bot.username or ""

    # --- errors --------------------------------------------------------------------------------

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log it; tell the person something went wrong, unless Telegram itself is the trouble."""
        error = context.error
        log.error("handling an update failed", exc_info=error)
        if telegram_is_the_trouble(error) or not isinstance(update, Update):
            return  # a timeout may have posted already; a flooded chat must not get one more message
        try:
            if update.callback_query is not None:
                return  # the button handler answers every press itself
            message = update.effective_message
            if message is not None and update.message_reaction is None:
                user = message.from_user
                w = words(user.language_code if user else None)  # the database may be the trouble: no chat setting
                await self.send.text(context.bot, message.chat.id, wording.error(w), message.message_id)
        except TelegramError as failure:
            log.warning("could not tell the chat about the error: %s", failure)

