"""The Discord adapter's settings, from the environment, and `serve()` / `start()` for `aniface serve`.

- `DISCORD_TOKEN`: the bot's token (Developer Portal -> your application -> Bot); unset: no Discord adapter.
- `DISCORD_GUILD_IDS`: comma-separated server ids. Set, `aniface discord sync` puts the commands in those
  servers only, where they appear at once (development); unset, globally (they may take a while to appear).
- `DISCORD_SHARD_COUNT`, `DISCORD_SHARD_IDS`: the bot's shards in total, and the ones this process runs
  (e.g. 4 and "0,1" here, 4 and "2,3" in a second process). Unset: one process, with the count Discord
  recommends. The rule they must keep is `bot.config.shard_problem`.
- `DISCORD_MESSAGE_CONTENT`: `true` (default) asks for the privileged Message Content intent, which
  must then be turned on in the Developer Portal; `false` runs without it: only /identify, the Apps
  menu, mentions and private chats are answered, and /wrong needs the reply to ping the bot.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

import discord

from adapters.discord_bot.app import DiscordBot, run
from adapters.discord_bot.handlers import AdapterOptions
from bot.config import Settings, shard_problem
from bot.ports import CorePort, StartError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A Discord setting that cannot work; the message names the variable."""


def _guild_ids(value: Any, name: str = "DISCORD_GUILD_IDS") -> tuple[int, ...]:
    if value in (None, ""):
        return ()
    items = re.split(r"[\s,]+", value.strip()) if isinstance(value, str) else list(value)
    ids = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit():
            raise SettingsError(f"{name} must be ids (numbers) separated by commas, not {text!r}")
        ids.append(int(text))
    return tuple(ids)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


@dataclass(frozen=True)
class DiscordSettings:
    token: str
    guild_ids: tuple[int, ...] = ()
    message_content: bool = True
    shard_count: int | None = None
    shard_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if (problem := shard_problem(self.shard_count, self.shard_ids)) is not None:
            raise SettingsError(problem)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "DiscordSettings | None":
        """The settings, or None when DISCORD_TOKEN is not set."""
        env = os.environ if environ is None else environ
        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            return None
        count = env.get("DISCORD_SHARD_COUNT", "").strip()
        if count and not count.isdigit():
            raise SettingsError(f"DISCORD_SHARD_COUNT must be a whole number, not {count!r}")
        return cls(token=token, guild_ids=_guild_ids(env.get("DISCORD_GUILD_IDS")),
                   message_content=_flag(env, "DISCORD_MESSAGE_CONTENT", True),
                   shard_count=int(count) if count else None,
                   shard_ids=_guild_ids(env.get("DISCORD_SHARD_IDS"), "DISCORD_SHARD_IDS"))

    @classmethod
    def from_config(cls, config: Any, environ: Mapping[str, str] | None = None) -> "DiscordSettings | None":
        """From `bot.config.Settings` (token and servers, from the environment or the TOML file), the rest
        from the environment; None without a token."""
        env = os.environ if environ is None else environ
        token = (getattr(config, "discord_token", None) or "").strip()
        if not token:
            return None
        guild_ids = _guild_ids(getattr(config, "discord_guild_ids", None) or env.get("DISCORD_GUILD_IDS"))
        message_content = getattr(config, "discord_message_content", None)
        if message_content is None:
            message_content = _flag(env, "DISCORD_MESSAGE_CONTENT", True)
        return cls(token=token, guild_ids=guild_ids, message_content=message_content,
                   shard_count=getattr(config, "discord_shard_count", None),
                   shard_ids=tuple(getattr(config, "discord_shard_ids", None) or ()))

    def build(self, core: CorePort, options: AdapterOptions | None = None) -> DiscordBot:
        return DiscordBot(core, self.token, message_content=self.message_content, options=options,
                          shard_count=self.shard_count, shard_ids=self.shard_ids)


def _settings(settings: Any) -> DiscordSettings:
    if isinstance(settings, DiscordSettings):
        return settings
    converted = DiscordSettings.from_config(settings)
    if converted is None:
        raise SettingsError("the Discord adapter needs DISCORD_TOKEN")
    return converted


async def start_adapter(core: CorePort, settings: Settings) -> DiscordBot | None:
    """For `aniface serve` (the `aniface.adapters` entry point): the adapter started in the running loop,
    or None when no DISCORD_TOKEN is configured; `await bot.stop()` finishes what is in flight."""
    if not (settings.discord_token or "").strip():
        return None
    try:
        return await start(core, settings)
    except Exception as error:  # noqa: BLE001 - a refused token, an unreachable gateway, a bad setting
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise StartError(f"Discord could not start: {type(error).__name__}: {detail}. Check DISCORD_TOKEN (from "
                         "the Developer Portal) and DISCORD_SHARD_COUNT/DISCORD_SHARD_IDS; see "
                         "adapters/discord_bot/README.md.") from error


async def _start(bot: DiscordBot) -> None:
    try:
        await bot.start()
    except discord.LoginFailure as error:
        raise SettingsError(f"Discord refused DISCORD_TOKEN ({error}): copy the token again from the Developer "
                            "Portal (your application -> Bot -> Reset Token)") from None


async def serve(core: CorePort, settings: DiscordSettings, stop_event: asyncio.Event | None = None,
                options: AdapterOptions | None = None) -> None:
    """Run the Discord adapter in the current loop until `stop_event` is set (or the task is cancelled).
    A refused token raises SettingsError; a gateway that closes for good (a privileged intent that is
    not enabled) raises discord.py's error after the adapter stopped."""
    bot = _settings(settings).build(core, options)
    await _start(bot)
    await run(bot, stop_event, started=True)


async def start(core: CorePort, settings: Any, options: AdapterOptions | None = None) -> DiscordBot:
    """For `aniface serve`: start the adapter in the running loop and return it; `await bot.stop()` stops
    it after finishing what is in flight. `settings`: DiscordSettings, or `bot.config.Settings`."""
    bot = _settings(settings).build(core, options)
    await _start(bot)
    return bot
