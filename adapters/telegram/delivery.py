"""Who receives the bot's updates: a webhook registered once for a whole fleet, or one poller.

Telegram hands a bot's updates to one consumer: the webhook while one is set (getUpdates is then
refused), else one getUpdates at a time (a second poller gets 409 Conflict). PTB's polling deletes a
webhook when it starts and retries a Conflict for ever, so a replica started without the webhook
setting would quietly take a fleet's updates, and two pollers would fight without end. Here polling
refuses to start while a webhook is set, and stops on the first Conflict, saying why.

`set_webhook`/`delete_webhook` are the Telegram side of `aniface telegram set-webhook|delete-webhook`:
registering is done once, by the operator, not by every replica at start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from telegram import Bot, WebhookInfo
from telegram.error import Conflict, TelegramError
from telegram.ext import Application

log = logging.getLogger(__name__)

CONFLICT_MESSAGE = ("Telegram: another process is getting this bot's updates ({error}); this one stopped polling "
                    "so that the two do not fight over them. Run one poller per bot token, or for several "
                    "replicas a webhook (TELEGRAM_WEBHOOK_URL and `aniface telegram set-webhook`).")


class WebhookIsSet(Exception):
    """Polling would delete the webhook a fleet of replicas receives its updates through."""

    def __init__(self, url: str) -> None:
        super().__init__(f"a webhook is set for this bot ({url}): polling would delete it and take the updates "
                         "that the replicas behind it receive. Serve the webhook instead (set TELEGRAM_WEBHOOK_URL "
                         "and TELEGRAM_WEBHOOK_SECRET), or remove it first with `aniface telegram delete-webhook`.")
        self.url = url


async def refuse_if_webhook(bot: Bot) -> None:
    """Raise WebhookIsSet when getWebhookInfo shows a URL."""
    info = await bot.get_webhook_info()
    if info.url:
        raise WebhookIsSet(info.url)


class StopOnConflict:
    """The `error_callback` of `Updater.start_polling` (PTB calls it for every failed getUpdates and then
    tries again): on a Conflict, stop polling (in a task: the callback must not be a coroutine) and say
    why; other errors are logged, and PTB's retries go on."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.conflict: Conflict | None = None
        self._stopping: asyncio.Task | None = None

    def __call__(self, error: TelegramError) -> None:
        if not isinstance(error, Conflict):
            log.warning("Telegram: getting updates failed (%s); trying again", error)
            return
        if self._stopping is not None:
            return
        self.conflict = error
        log.error(CONFLICT_MESSAGE.format(error=error))
        self._stopping = asyncio.get_running_loop().create_task(self._stop_polling())

    async def _stop_polling(self) -> None:
        updater = self.app.updater
        try:
            if updater is not None and updater.running:
                await updater.stop()
        except RuntimeError:  # stopped meanwhile by the adapter's own stop()
            pass

    async def wait_stopped(self) -> None:
        """For tests and for stop(): the polling this guard stopped is down."""
        if self._stopping is not None:
            await self._stopping


async def set_webhook(bot: Bot, *, url: str, secret_token: str, allowed_updates: Sequence[str],
                      max_connections: int, drop_pending_updates: bool = False) -> WebhookInfo:
    """setWebhook once for the fleet, then what Telegram reports (getWebhookInfo)."""
    await bot.set_webhook(url=url, secret_token=secret_token, allowed_updates=list(allowed_updates),
                          max_connections=max_connections, drop_pending_updates=drop_pending_updates)
    return await bot.get_webhook_info()


async def delete_webhook(bot: Bot, *, drop_pending_updates: bool = False) -> WebhookInfo:
    await bot.delete_webhook(drop_pending_updates=drop_pending_updates)
    return await bot.get_webhook_info()
