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
  to. `TELEGRAM_WEBHOOK_SECRET` (required then; 1-256 of A-Z a-z 0-9 _ -) is checked on every request.
  `TELEGRAM_WEBHOOK_LISTEN`, `TELEGRAM_WEBHOOK_PORT`, `TELEGRAM_WEBHOOK_PATH`: where PTB's webhook
  server listens behind the reverse proxy (127.0.0.1, 8443, `telegram`).
- `TELEGRAM_POLL_TIMEOUT`: the long-polling timeout in seconds (30).
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Mapping

from telegram.ext import Application

from adapters.telegram.app import build_application, run, start_polling, start_webhook, stop
from adapters.telegram.handlers import AdapterOptions
from bot.config import Settings
from bot.ports import CorePort, StartError

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
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_path: str = "telegram"
    poll_timeout: int = 30

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
            webhook_listen=env.get("TELEGRAM_WEBHOOK_LISTEN", "").strip() or "127.0.0.1",
            webhook_port=number("TELEGRAM_WEBHOOK_PORT", 8443),
            webhook_path=env.get("TELEGRAM_WEBHOOK_PATH", "").strip().strip("/") or "telegram",
            poll_timeout=number("TELEGRAM_POLL_TIMEOUT", 30),
        )
        settings.check()
        return settings

    def check(self) -> None:
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
                        webhook_listen=settings.telegram_webhook_listen, webhook_port=settings.telegram_webhook_port,
                        webhook_path=settings.telegram_webhook_path.strip("/") or "telegram",
                        poll_timeout=settings.telegram_poll_timeout)
        converted.check()
        return converted

    def build(self, core: CorePort, options: AdapterOptions | None = None) -> Application:
        return build_application(core, self.token, base_url=self.base_url, base_file_url=self.base_file_url,
                                 local_mode=self.local_mode, bot_username=self.bot_username, options=options)


class TelegramRunning:
    """The adapter running in the caller's loop (polling or a webhook); `stop()` finishes what is in hand."""

    def __init__(self, app: Application) -> None:
        self.app = app

    def describe(self) -> str:
        return "running"

    async def stop(self) -> None:
        await stop(self.app)


async def start(core: CorePort, settings: Settings, options: AdapterOptions | None = None) -> TelegramRunning | None:
    """For `aniface serve` (the `aniface.adapters` entry point): start in the running loop (getMe,
    commands, then polling or the webhook); None when no TELEGRAM_TOKEN is configured."""
    try:
        tg = TelegramSettings.from_settings(settings)
    except SettingsError as error:
        raise StartError(f"Telegram: {error}") from None
    if tg is None:
        return None
    app = tg.build(core, options)
    try:
        if tg.webhook_url:
            await start_webhook(app, webhook_url=tg.webhook_url, secret_token=tg.webhook_secret or "",
                                listen=tg.webhook_listen, port=tg.webhook_port, url_path=tg.webhook_path)
        else:
            await start_polling(app, poll_timeout=tg.poll_timeout)
    except Exception as error:  # noqa: BLE001 - a wrong token, an unreachable Bot API, a taken port
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise StartError(f"Telegram could not start: {type(error).__name__}: {detail}. Check TELEGRAM_TOKEN (from "
                         "@BotFather), that the Bot API is reachable (TELEGRAM_BASE_URL), and for a webhook "
                         "TELEGRAM_WEBHOOK_URL/_LISTEN/_PORT.") from error
    return TelegramRunning(app)


async def serve(core: CorePort, settings: TelegramSettings, stop_event: asyncio.Event | None = None,
                options: AdapterOptions | None = None) -> None:
    """Run the Telegram adapter in the current loop until `stop_event` is set (or the task is cancelled)."""
    app = settings.build(core, options)
    await run(app, stop_event=stop_event, webhook_url=settings.webhook_url, secret_token=settings.webhook_secret,
              listen=settings.webhook_listen, port=settings.webhook_port, url_path=settings.webhook_path,
              poll_timeout=settings.poll_timeout)
