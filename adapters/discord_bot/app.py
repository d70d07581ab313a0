"""The discord.py client, and running it inside a loop that someone else owns (`aniface serve`).

    bot = DiscordBot(core, token)          # or build_client(core) for the client alone
    await bot.start()                      # login (a wrong token fails here), connect the shards
    ...                                    # the loop serves other adapters meanwhile
    await bot.stop()                       # stop taking work, finish what is in flight, disconnect

`run(bot, stop_event)` does both and returns when `stop_event` is set (or when cancelled, or when
the gateway connection ends for good). discord.py's own `Client.run()` is not used: it owns the loop.
The commands are registered with Discord by `aniface discord sync` (`sync.py`), not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Sequence

import discord
from discord import app_commands

from adapters.discord_bot.translator import CatalogTranslator
from adapters.discord_bot.handlers import AdapterOptions, DiscordHandlers
from bot.ports import CorePort

log = logging.getLogger(__name__)

PRIVILEGED_HINT = (
    "Discord refused the gateway connection because the bot asks for the Message Content intent, which is "
    "privileged: turn it on in the Developer Portal (your application -> Bot -> Privileged Gateway Intents -> "
    "Message Content Intent), or set DISCORD_MESSAGE_CONTENT=false to run without it (then only /identify, "
    "the Apps menu, mentions and private chats are answered)."
)


def intents(message_content: bool = True) -> discord.Intents:
    """What the bot asks the gateway for. No member list, no presences: only what it answers.

    - guilds: the servers and their channels; guild_messages / dm_messages: pictures and replies;
    - guild_reactions / dm_reactions: reactions on answers (raw events: work for old answers too);
    - message_content (privileged): attachments, embeds and text of messages that do not mention the
      bot; without it, "answer every picture" and /wrong without a ping see empty messages.
    """
    chosen = discord.Intents.none()
    chosen.guilds = True
    chosen.guild_messages = True
    chosen.dm_messages = True
    chosen.guild_reactions = True
    chosen.dm_reactions = True
    chosen.message_content = message_content
    return chosen


class AnifaceClient(discord.AutoShardedClient):
    """discord.py's AutoShardedClient with an app-command tree, whose events go to `DiscordHandlers`.

    Sharded always: one session may hold at most 2,500 servers (Discord closes it with 4011 beyond), and
    discord.py then cannot go on. `shard_count` and `shard_ids` split the shards over processes (every
    process the same count, each its own ids); neither: discord.py asks Discord for the count it
    recommends (/gateway/bot) and runs them all here. DMs reach shard 0 only. The commands are not
    synced here: `aniface discord sync` does it once (see `sync.py`).
    """

    def __init__(self, handlers: DiscordHandlers, *, message_content: bool = True, shard_count: int | None = None,
                 shard_ids: Sequence[int] = ()) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning about it
        super().__init__(intents=intents(message_content), allowed_mentions=discord.AllowedMentions.none(),
                         chunk_guilds_at_startup=False, guild_ready_timeout=handlers.options.guild_ready_timeout,
                         max_messages=1000, shard_count=shard_count, shard_ids=list(shard_ids) or None)
        self.handlers = handlers
        self.tree = app_commands.CommandTree(self)
        handlers.register(self)

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CatalogTranslator())

    async def on_ready(self) -> None:
        log.info("Discord: connected as %s (%s), shards %s of %s, in %d server(s)", self.user,
                 self.user.id if self.user else "?", ",".join(map(str, sorted(self.shards))), self.shard_count,
                 len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        await self.handlers.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.handlers.on_raw_message_edit(payload)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.handlers.on_raw_reaction_add(payload)


def build_client(core: CorePort, *, message_content: bool = True, options: AdapterOptions | None = None,
                 shard_count: int | None = None, shard_ids: Sequence[int] = ()) -> AnifaceClient:
    """A client whose handlers translate Discord onto `core`'s use cases (not logged in yet).

    `message_content=False`: do not ask for the privileged intent. `shard_count`, `shard_ids`: this
    process's share of the bot's shards (see `AnifaceClient`).
    """
    return AnifaceClient(DiscordHandlers(core, options), message_content=message_content, shard_count=shard_count,
                         shard_ids=shard_ids)


class DiscordBot:
    """One running Discord adapter: `start()`, then `stop()`; `aniface serve` holds it."""

    def __init__(self, core: CorePort, token: str, *, message_content: bool = True,
                 options: AdapterOptions | None = None, shard_count: int | None = None,
                 shard_ids: Sequence[int] = ()) -> None:
        self.token = token
        self.client = build_client(core, message_content=message_content, options=options, shard_count=shard_count,
                                   shard_ids=shard_ids)
        self.handlers = self.client.handlers
        self._connection: asyncio.Task | None = None

    async def start(self) -> None:
        """Log in (a wrong token raises discord.LoginFailure here), then start the gateway's shards."""
        await self.handlers.open()
        try:
            await self.client.login(self.token)
        except BaseException:
            await self.client.close()
            await self.handlers.close()
            raise
        self._connection = asyncio.create_task(self._connect(), name="discord gateway")

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            log.error(PRIVILEGED_HINT)
            raise
        except Exception:
            log.exception("Discord: the gateway connection ended")
            raise

    @property
    def connection(self) -> asyncio.Task | None:
        """The gateway task: done when the connection ended for good (a bad token, a missing intent)."""
        return self._connection

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        waiter = asyncio.ensure_future(self.client.wait_until_ready())
        tasks = {waiter} if self._connection is None else {waiter, self._connection}
        try:
            done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._connection is not None and self._connection in done:
            self._connection.result()  # raises what ended it
            raise ConnectionError("the Discord gateway connection ended before it was ready")
        if waiter not in done:
            raise TimeoutError("Discord did not become ready in time")

    def describe(self) -> str:
        """The start-up line: which shards, and how the commands get to Discord (not synced at start)."""
        count = self.client.shard_count
        if count is None:
            shards = "as many shards as Discord recommends"
        else:
            shards = f"shards {','.join(map(str, self.client.shard_ids or range(count)))} of {count}"
        return (f"running ({shards}); the slash commands are not synced at start: run `aniface discord sync` "
                "once after installing, and again when an upgrade changes them")

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking new work, finish what is in flight (replies need the connection), then disconnect."""
        await self.handlers.drain(timeout)
        if self._connection is not None and not self._connection.done() and not self.client.is_ready():
            # discord.py's start-up (waiting for the servers after READY) must settle before closing: its
            # "ready" would otherwise be dispatched on a closed client
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.client.wait_until_ready(),
                                       self.handlers.options.guild_ready_timeout + 2.0)
        await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._connection, timeout=10)
        await self.handlers.close()


async def run(bot: DiscordBot, stop_event: asyncio.Event | None = None, *, started: bool = False) -> None:
    """Serve until `stop_event` is set, the task is cancelled, or the connection ends for good (raised).
    `started`: `bot.start()` was already awaited."""
    if not started:
        await bot.start()
    stopper = asyncio.ensure_future((stop_event or asyncio.Event()).wait())
    try:
        assert bot.connection is not None
        await asyncio.wait({stopper, bot.connection}, return_when=asyncio.FIRST_COMPLETED)
        if bot.connection.done() and not bot.connection.cancelled() and bot.connection.exception() is not None:
            raise bot.connection.exception()
    finally:
        stopper.cancel()
        await bot.stop()
