"""The Telegram adapter (python-telegram-bot v22, asyncio): Telegram onto `bot`'s use cases and back.

For `aniface serve` (entry point `aniface.adapters: telegram`): `running = await start(core, settings)`
(None without TELEGRAM_TOKEN), then `await running.stop()`. Standalone, in its own event loop:

    from adapters.telegram import TelegramSettings, serve
    settings = TelegramSettings.from_env()          # None without TELEGRAM_TOKEN
    if settings:
        await serve(core, settings, stop_event)     # long polling

or step by step: `app = build_application(core, token, ...)`, `await start_polling(app)`, and
`await stop(app)`. A webhook is served on the web server by `aniface serve` (adapters.telegram.webhook).
"""

from adapters.telegram.app import (ALLOWED_UPDATES, build_application, register_commands, run, start_polling,
                                   start_webhook, stop)
from adapters.telegram.config import SettingsError, TelegramRunning, TelegramSettings, serve, start
from adapters.telegram.handlers import AdapterOptions, TelegramHandlers

__all__ = ["ALLOWED_UPDATES", "AdapterOptions", "SettingsError", "TelegramHandlers", "TelegramSettings",
           "TelegramRunning", "build_application", "register_commands", "run", "serve", "start", "start_polling",
           "start_webhook", "stop"]
