"""Events of a chat itself: a group that became a supergroup.

Telegram gives the supergroup a new chat id and says so twice: a service message in the old group
(`migrate_to_chat_id`) and one in the new supergroup (`migrate_from_chat_id`). Either one tells the core,
which moves the chat's settings (once, whichever comes first). A send that still goes to the old id is
answered with ChatMigrated: `sending.Sender` tells the core the same thing and sends to the new id.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from adapters.telegram.common import PLATFORM
from bot.ports import CorePort

log = logging.getLogger(__name__)


class Chats:
    """The chat-event handlers."""

    def __init__(self, core: CorePort) -> None:
        self.core = core

    async def migrated(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message.migrate_to_chat_id:
            old, new = message.chat.id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id:
            old, new = message.migrate_from_chat_id, message.chat.id
        else:
            return
        await self.core.chat_moved(PLATFORM, str(old), str(new))
