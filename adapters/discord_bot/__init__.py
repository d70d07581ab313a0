"""The Discord adapter (discord.py 2.x, asyncio): Discord onto `bot`'s use cases and back.

Named `discord_bot` so that it cannot shadow the `discord` package. For `aniface serve`, in its
own event loop:

    from adapters.discord_bot import DiscordSettings, serve
    settings = DiscordSettings.from_env()           # None without DISCORD_TOKEN
    if settings:
        await serve(core, settings, stop_event)     # the gateway, until stop_event is set

or `bot = await start(core, settings)` ... `await bot.stop()` (settings: DiscordSettings or
`bot.config.Settings`), or step by step with `DiscordBot(core, token)` / `build_client(core)`.
The commands are registered with Discord apart from serving, when they change:
`await sync_commands(token, guild_ids)` (what `aniface discord sync` runs).
"""

from adapters.discord_bot.app import AnifaceClient, DiscordBot, build_client, intents, run
from adapters.discord_bot.config import DiscordSettings, SettingsError, serve, start, start_adapter
from adapters.discord_bot.handlers import AdapterOptions, DiscordHandlers
from adapters.discord_bot.sync import Synced, sync_commands

__all__ = ["AdapterOptions", "AnifaceClient", "DiscordBot", "DiscordHandlers", "DiscordSettings", "SettingsError",
           "Synced", "build_client", "intents", "run", "serve", "start", "start_adapter", "sync_commands"]
