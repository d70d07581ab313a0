"""The Telegram adapter's settings, from the environment, and `serve()` for `aniface serve`.

- `TELEGRAM_TOKEN`: the bot's token from @BotFather; unset: no Telegram adapter.
- `TELEGRAM_BASE_URL`: the Bot API's address, e.g. `http://localhost:8081` for a local Bot API server
  (`/bot` is added when missing). Default: Telegram's own.
- `TELEGRAM_BASE_FILE_URL`: where files are downloaded from, e.g. `http://localhost:8081/file` (`/bot`
  added when missing); default: `/file/bot` on the TELEGRAM_BASE_URL server.
- `TELEGRAM_LOCAL_MODE=1`: that server runs with `--local` (no 20 MB download limit; files are read
  from its disk, which must then be this machine's).
- `TELEGRAM_BOT_USERNAME`: the bot's @name for mentions, if not the one getMe reports.
- `TELEGRAM_WEBHOOK_URL`: set, a webhook instead of long polling: the public HTTPS URL Telegram posts
  to, which the reverse proxy forwards to the web server's `/hooks/<TELEGRAM_WEBHOOK_PATH>` (default
  `/hooks/telegram`). `TELEGRAM_WEBHOOK_SECRET` (required then; 1-256 of A-Z a-z 0-9 _ -) is checked on
  every request. `TELEGRAM_WEBHOOK_MAX_CONNECTIONS` (40): how many POSTs Telegram keeps open at once.
  The webhook is registered once with `aniface telegram set-webhook`, not by each replica.
- `TELEGRAM_POLL_TIMEOUT`: the long-polling timeout in seconds (30).
- `ANIFACE_REPLICAS` (bot.config): each process keeps to its share of Telegram's flood limits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from telegram.error import TelegramError
from telegram.ext import Application

from adapters.telegram.app import HANDLERS_KEY, build_application, run, start_polling, start_webhook, stop
from adapters.telegram.common import PLATFORM, per_replica
from adapters.telegram.delivery import WebhookIsSet
from adapters.telegram.handlers import AdapterOptions, TelegramHandlers
from adapters.telegram.webhook import MAX_UPDATE_BYTES, WebhookReceiver
from bot.config import Settings
from bot.inbound import NAME_CHARACTERS, InboundRoute
from bot.ports import CorePort, StartError

log = logging.getLogger(__name__)

_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TRUE = {"1", "true", "yes", "on"}


class SettingsError(ValueError):
    """A Telegram setting that cannot work; the message names the variable."""


def _with_bot_suffix(url: str | None) -> str | None:
    """PTB wants the prefix before the token, ".../bot"; people write the server's address."""
    if not url:
        return None
    url = url.strip().rstrip("/")
    return url if url.endswith("/bot") or "{token}" in url else url + "/bot"


@dataclass(frozen=True)
class TelegramSettings:
    token: str
    base_url: str | None = None
    base_file_url: str | None = None
    local_mode: bool = False
    bot_username: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_path: str = "telegram"
    webhook_max_connections: int = 40
    poll_timeout: int = 30
    replicas: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "TelegramSettings | None":
        """The settings, or None when TELEGRAM_TOKEN is not set."""
        env = os.environ if environ is None else environ
        token = env.get("TELEGRAM_TOKEN", "").strip()
        if not token:
            return None

        def number(name: str, default: int) -> int:
            value = env.get(name, "").strip()
            try:
                return int(value) if value else default
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {value!r}") from None

        base_url = _with_bot_suffix(env.get("TELEGRAM_BASE_URL"))
        base_file_url = _with_bot_suffix(env.get("TELEGRAM_BASE_FILE_URL"))
        if base_url and not base_file_url and base_url.endswith("/bot"):  # the same server's file address
            base_file_url = base_url[:-len("/bot")] + "/file/bot"
        settings = cls(
            token=token,
            base_url=base_url,
            base_file_url=base_file_url,
            local_mode=env.get("TELEGRAM_LOCAL_MODE", "").strip().lower() in _TRUE,
            bot_username=env.get("TELEGRAM_BOT_USERNAME", "").strip().lstrip("@") or None,
            webhook_url=env.get("TELEGRAM_WEBHOOK_URL", "").strip() or None,
            webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None,
            webhook_path=env.get("TELEGRAM_WEBHOOK_PATH", "").strip().strip("/") or "telegram",
            webhook_max_connections=number("TELEGRAM_WEBHOOK_MAX_CONNECTIONS", 40),
            poll_timeout=number("TELEGRAM_POLL_TIMEOUT", 30),
            replicas=number("ANIFACE_REPLICAS", 1),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if not self.webhook_path or not set(self.webhook_path) <= NAME_CHARACTERS:
            raise SettingsError("TELEGRAM_WEBHOOK_PATH is one path segment of A-Z a-z 0-9 _ - (it is served at "
                                "/hooks/<path>)")
        if self.webhook_url:
            if not self.webhook_url.startswith("https://"):
                raise SettingsError("TELEGRAM_WEBHOOK_URL must be an https:// address (Telegram posts only to HTTPS)")
            if not self.webhook_secret or not _SECRET.match(self.webhook_secret):
                raise SettingsError("a webhook needs TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -")

    @classmethod
    def from_settings(cls, settings: Settings) -> "TelegramSettings | None":
        """From the settings `aniface` loaded once (environment and TOML file); None without a token."""
        token = (settings.telegram_token or "").strip()
        if not token:
            return None
        base_url = _with_bot_suffix(settings.telegram_base_url)
        base_file_url = _with_bot_suffix(settings.telegram_base_file_url)
        if base_url and not base_file_url and base_url.endswith("/bot"):
            base_file_url = base_url[:-len("/bot")] + "/file/bot"
        converted = cls(token=token, base_url=base_url, base_file_url=base_file_url,
                        local_mode=settings.telegram_local_mode,
                        bot_username=(settings.telegram_bot_username or "").strip().lstrip("@") or None,
                        webhook_url=settings.telegram_webhook_url, webhook_secret=settings.telegram_webhook_secret,
                        webhook_path=settings.telegram_webhook_path.strip("/") or "telegram",
                        webhook_max_connections=settings.telegram_webhook_max_connections,
                        poll_timeout=settings.telegram_poll_timeout, replicas=settings.replicas)
        converted.check()
        return converted

    def build(self, core: CorePort, options: AdapterOptions | None = None) -> Application:
        """The Application, keeping to this replica's share of the flood limits; without an Updater for a
        webhook."""
        return build_application(core, self.token, base_url=self.base_url, base_file_url=self.base_file_url,
                                  local_mode=self.local_mode, bot_username=self.bot_username,
                                  options=per_replica(options or AdapterOptions(), self.replicas),
                                  webhook=bool(self.webhook_url))


class TelegramRunning:
    """The adapter running in the caller's loop (polling or a webhook); `stop()` finishes what is in hand."""

    def __init__(self, app: Application, description: str = "running", *, core: CorePort | None = None,
                 receiver: WebhookReceiver | None = None, route: str | None = None,
                 stop_taking_albums: Callable[[], None] | None = None) -> None:
        self.app = app
        self.description = description
        self._core, self._receiver, self._route = core, receiver, route
        self._stop_taking_albums = stop_taking_albums

    def describe(self) -> str:
        return self.description

    def stop_accepting(self) -> None:
        if self._receiver is not None:
            self._receiver.close()  # 503 from now on: Telegram sends those again, to a replica that runs
        if self._stop_taking_albums is not None:
            self._stop_taking_albums()  # a dead replica's albums are for a replica that stays

    async def stop(self) -> None:
        self.stop_accepting()
        await stop(self.app)        # what is on the update queue is handled first
        if self._core is not None and self._route is not None:
            self._core.inbound.remove(self._route)


async def start(core: CorePort, settings: Settings, options: AdapterOptions | None = None) -> TelegramRunning | None:
    """For `aniface serve` (the `aniface.adapters` entry point): start in the running loop (getMe,
    commands, then polling or the webhook's route on the web server); None when no TELEGRAM_TOKEN is
    configured."""
    try:
        tg = TelegramSettings.from_settings(settings)
    except SettingsError as error:
        raise StartError(f"Telegram: {error}") from None
    if tg is None:
        return None
    if tg.webhook_url and not settings.web_enabled:
        raise StartError("Telegram: the webhook (TELEGRAM_WEBHOOK_URL) is served by the web server, at "
                         f"/hooks/{tg.webhook_path}, and the web server is off (--no-web or ANIFACE_WEB=false).")
    app = tg.build(core, options)
    try:
        if tg.webhook_url:
            await start_webhook(app)
        else:
            await start_polling(app, poll_timeout=tg.poll_timeout)
    except WebhookIsSet as error:
        raise StartError(f"Telegram: {error}") from None
    except Exception as error:  # noqa: BLE001 - a wrong token, an unreachable Bot API
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise StartError(f"Telegram could not start: {type(error).__name__}: {detail}. Check TELEGRAM_TOKEN (from "
                         "@BotFather) and that the Bot API is reachable (TELEGRAM_BASE_URL).") from error
    limits = f"{tg.replicas} replicas share the flood limits" if tg.replicas > 1 else ""
    handlers: TelegramHandlers = app.bot_data[HANDLERS_KEY]
    # albums whose replica (or this process's last run) died before answering them are answered here
    stop_taking_albums = core.answer_albums_with(PLATFORM, handlers.options.album_wait, handlers.pictures.take_over(app))
    if not tg.webhook_url:
        return TelegramRunning(app, ", ".join(filter(None, ["polling", limits])),
                               stop_taking_albums=stop_taking_albums)
    receiver = WebhookReceiver(app, core, tg.webhook_secret or "")
    core.inbound.add(InboundRoute(tg.webhook_path, receiver, MAX_UPDATE_BYTES))
    description = f"webhook {tg.webhook_url}, served at /hooks/{tg.webhook_path}"
    if not await _registered(app, tg.webhook_url):
        description += " (Telegram has another webhook or none: run `aniface telegram set-webhook`)"
    return TelegramRunning(app, ", ".join(filter(None, [description, limits])), core=core, receiver=receiver,
                           route=tg.webhook_path, stop_taking_albums=stop_taking_albums)


async def _registered(app: Application, url: str) -> bool:
    """Whether Telegram posts to `url` (it is registered once, by the operator; a replica only says so)."""
    try:
        return (await app.bot.get_webhook_info()).url == url
    except TelegramError as error:
        log.warning("Telegram: could not read the webhook's registration: %s", error)
        return True


async def serve(core: CorePort, settings: TelegramSettings, stop_event: asyncio.Event | None = None,
                options: AdapterOptions | None = None) -> None:
    """Poll in the current loop until `stop_event` is set (or the task is cancelled). A webhook is served
    by `aniface serve`, on the web server."""
    if settings.webhook_url:
        raise SettingsError("a webhook is served by `aniface serve` on its web server; this runs long polling only")
    app = settings.build(core, options)
    await run(app, stop_event=stop_event, poll_timeout=settings.poll_timeout)
