"""Corrections: /wrong, the name the bot asked for, a button under an answer, a reaction on one.

The core says what each one means; reaction acknowledgements in a chat are batched into one message.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import ReactionTypeEmoji, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from adapters.telegram import render, texts
from adapters.telegram.common import AdapterOptions, arguments, person_of, user_person
from adapters.telegram.sending import Sender
from bot import wording
from bot.i18n import words
from bot.adapter_kit import AckBatcher
from bot.ports import CorePort

log = logging.getLogger(__name__)


class Corrections:
    """The correction handlers, and the reaction acknowledgements waiting to be sent."""

    def __init__(self, core: CorePort, options: AdapterOptions, send: Sender) -> None:
        self.core = core
        self.options = options
        self.send = send
        self._app: Application | None = None
        self._acks: AckBatcher[int] = AckBatcher(self._send_acks, self._spawn, window=lambda: self.options.ack_window,
                                                 lines=self.options.ack_lines)

    def bind(self, app: Application) -> None:
        """The Application whose tasks send the batched acknowledgements."""
        self._app = app

    async def wrong(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/wrong [n] [name] in reply to one of the bot's answers."""
        message = update.effective_message
        target = message.reply_to_message
        if target is None:
            w = await self.core.words_for(person_of(message), str(message.chat.id))
            await self.send.text(context.bot, message.chat.id, wording.wrong_how(w), message.message_id)
            return
        ack = await self.core.wrong_command(person_of(message), str(message.chat.id), str(target.message_id),
                                            arguments(message))
        await self.send.ack(context.bot, message.chat.id, message.message_id, ack)

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
                w = await self.core.words_for(person_of(message), str(message.chat.id))
                await self.send.text(context.bot, message.chat.id, texts.send_a_picture(w), message.message_id)
            return
        await self.send.ack(context.bot, message.chat.id, message.message_id, ack)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A correction button; every press is answered, whatever happens."""
        query = update.callback_query
        answered = False
        try:
            pressed = render.parse_press(query.data)
            if pressed is None or query.message is None:
                await query.answer(texts.stale_button(words(query.from_user.language_code)))
                answered = True
                return
            face_id, choice = pressed
            chat_id = query.message.chat.id
            ack = await self.core.press(user_person(query.from_user), str(chat_id), face_id, choice, via="button")
            await query.answer(render.toast(ack.text), show_alert=not ack.ok)
            answered = True
            if ack.asks_for_name:  # the name comes back as a reply: ask in the chat, to that person
                await self.send.ack(context.bot, chat_id, query.message.message_id, ack, mention=query.from_user)
        finally:
            if not answered:
                with contextlib.suppress(TelegramError):
                    await query.answer(texts.error_short(words(query.from_user.language_code)), show_alert=True)

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
            ack = await self.core.react(user_person(user), str(chat_id), str(reaction.message_id), emoji)
            if ack is None or ack.quiet:
                continue  # an emoji that means nothing, or a message that is not an answer: stay quiet
            if ack.wants_answer:
                await self.send.ack(context.bot, chat_id, reaction.message_id, ack, mention=user)
            else:
                self._acks.add(chat_id, reaction.message_id, ack.text,
                               await self.core.words_for(user_person(user), str(chat_id)))

    def _spawn(self, coroutine) -> None:  # noqa: ANN001 - a coroutine, run as the Application's task
        assert self._app is not None
        self._app.create_task(coroutine, name="acks")

    async def _send_acks(self, chat_id: int, reply_to: int, text: str) -> None:
        assert self._app is not None
        await self.send.text(self._app.bot, chat_id, text, reply_to, quiet=True)
