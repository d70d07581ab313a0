"""The PTB Application, and running it inside a loop that someone else owns (`aniface serve`).

    app = build_application(core, token)
    await start_polling(app)      # refused while a webhook is set; stops on a Conflict
    ...                           # the loop serves other adapters meanwhile
    await stop(app)

A webhook: `build_application(..., webhook=True)` (no Updater), `await start_webhook(app)`, and the
updates are put on `app.update_queue` by `adapters.telegram.webhook.WebhookReceiver`, a route of the
web adapter's server. `run(app, ...)` polls until `stop_event` is set (or the task is cancelled).
PTB's own `run_polling()`/`run_webhook()` are not used: they own the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from telegram import BotCommand, BotCommandScopeAllChatAdministrators, BotCommandScopeAllPrivateChats, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot.i18n import Words, words
from bot.language import DEFAULT, SUPPORTED
from adapters.telegram import texts
from adapters.telegram.delivery import StopOnConflict, refuse_if_webhook
from adapters.telegram.handlers import AdapterOptions, TelegramHandlers
from adapters.telegram.network import Limiter, SafeRequest
from bot.core import Core

log = logging.getLogger(__name__)

#: What the bot asks Telegram for. `message_reaction` only arrives where the bot is an admin; without
#: it the buttons and /wrong still work.
ALLOWED_UPDATES: tuple[str, ...] = (Update.MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION)
HANDLERS_KEY = "aniface.handlers"
CONFLICT_GUARD_KEY = "aniface.conflict_guard"


def build_application(core: Core, token: str, *, base_url: str | None = None, base_file_url: str | None = None,
                      local_mode: bool = False, bot_username: str | None = None,
                      options: AdapterOptions | None = None, webhook: bool = False) -> Application:
    """A PTB Application whose handlers translate Telegram onto `core`'s use cases.

    `base_url`/`base_file_url` as PTB takes them (e.g. "http://localhost:8081/bot" and
    "http://localhost:8081/file/bot" for a local Bot API server); `local_mode` for a server started
    with --local (files are read from its disk and are not limited to 20 MB). `bot_username`
    overrides the name getMe reports (for mentions). Bot admins come from the core's `admins`;
    chat admins are asked of Telegram when it matters. `webhook`: no Updater (updates come from
    `adapters.telegram.webhook`).
    """
    options = options or AdapterOptions()
    timeouts = dict(connect_timeout=options.connect_timeout, read_timeout=options.read_timeout,
                    write_timeout=options.write_timeout, pool_timeout=options.pool_timeout)
    builder = (
        ApplicationBuilder()
        .token(token)
        .request(SafeRequest(connection_pool_size=64, media_write_timeout=options.write_timeout, **timeouts))
        .get_updates_request(SafeRequest(connection_pool_size=2, **timeouts))  # PTB adds the poll timeout
        .rate_limiter(Limiter(rate_retries=options.rate_retries, network_retries=options.network_retries,
                              retry_delay=options.retry_delay, overall_max_rate=options.overall_rate,
                              group_max_rate=options.group_rate))
        .concurrent_updates(True)  # one slow picture must not hold up the others
    )
    if base_url:
        builder = builder.base_url(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    if local_mode:
        builder = builder.local_mode(True)
    if webhook:
        builder = builder.updater(None)
    app = builder.build()
    handlers = TelegramHandlers(core, options, bot_username=bot_username, local_mode=local_mode)
    handlers.register(app)
    app.bot_data[HANDLERS_KEY] = handlers
    return app


def _commands(w: Words, pairs: Sequence[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(name, description) for name, description in texts.commands(w, pairs)]


def command_languages() -> list[tuple[str | None, Words]]:
    """(language_code, words) for setMyCommands: English for everyone without a language of their own
    (no language_code), then each shipped language under its ISO 639-1 code ("zh", "pt"), which is all
    Telegram takes there."""
    return [(None, words(DEFAULT))] + [(code.split("_")[0].lower(), words(code)) for code in SUPPORTED
                                       if code != DEFAULT]


async def register_commands(app: Application) -> None:
    """setMyCommands: what everyone sees, what private chats see, what group admins see, in each language."""
    bot = app.bot
    try:
        for code, w in command_languages():
            await bot.set_my_commands(_commands(w, texts.EVERYONE_COMMANDS), language_code=code)
            await bot.set_my_commands(_commands(w, texts.PRIVATE_COMMANDS), scope=BotCommandScopeAllPrivateChats(),
                                      language_code=code)
            await bot.set_my_commands(_commands(w, texts.ADMIN_COMMANDS),
                                      scope=BotCommandScopeAllChatAdministrators(), language_code=code)
    except TelegramError as error:  # the bot works without its command menu
        log.warning("could not register the bot's commands: %s", error)


async def _initialize(app: Application) -> None:
    await app.initialize()  # getMe: fails here on a wrong token or an unreachable Bot API
    await register_commands(app)
    await app.start()


async def start_polling(app: Application, *, poll_timeout: int = 30, drop_pending_updates: bool = False,
                        allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> None:
    """Start the Application and long polling (getUpdates); returns once polling runs.

    Raises `delivery.WebhookIsSet` while a webhook is set (PTB's polling would delete it); a Conflict later
    (another poller) stops polling with a logged reason (`delivery.StopOnConflict`)."""
    guard = StopOnConflict(app)
    app.bot_data[CONFLICT_GUARD_KEY] = guard
    try:
        await app.initialize()  # getMe: fails here on a wrong token or an unreachable Bot API
        await refuse_if_webhook(app.bot)
        await register_commands(app)
        await app.start()
        await app.updater.start_polling(timeout=poll_timeout, allowed_updates=list(allowed_updates),
                                        drop_pending_updates=drop_pending_updates, error_callback=guard)
    except BaseException:
        await stop(app)
        raise
    log.info("Telegram: polling as @%s", app.bot.username)


async def start_webhook(app: Application) -> None:
    """Start an Application built with `webhook=True`: its updates come from the web server's route
    (`adapters.telegram.webhook`); the webhook itself is registered once, by `aniface telegram set-webhook`."""
    try:
        await _initialize(app)
    except BaseException:
        await stop(app)
        raise
    log.info("Telegram: taking webhook updates as @%s", app.bot.username)


async def stop(app: Application) -> None:
    """Stop fetching updates, finish the updates and albums in hand, close the connections."""
    guard = app.bot_data.get(CONFLICT_GUARD_KEY)
    if guard is not None:
        await guard.wait_stopped()  # a Conflict may be stopping the Updater this moment
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()


async def run(app: Application, *, stop_event: asyncio.Event | None = None, poll_timeout: int = 30) -> None:
    """Poll until `stop_event` is set or the task is cancelled (a webhook needs the web server: `aniface serve`)."""
    await start_polling(app, poll_timeout=poll_timeout)
    try:
        await (stop_event or asyncio.Event()).wait()
    finally:
        await stop(app)
