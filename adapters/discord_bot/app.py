"""The discord.py client, and running it inside a loop that someone else owns (`aniface serve`).

    bot = DiscordBot(core, token)          # or build_client(core) for the client alone
    await bot.start()                      # login (a wrong token fails here), sync commands, connect
    ...                                    # the loop serves other adapters meanwhile
    await bot.stop()                       # stop taking work, finish what is in flight, disconnect

`run(bot, stop_event)` does both and returns when `stop_event` is set (or when cancelled, or when
the gateway connection ends for good). discord.py's own `Client.run()` is not used: it owns the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Sequence

import discord
from discord import app_commands

from adapters.discord_bot.handlers import AdapterOptions, DiscordHandlers
from bot.core import Core

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


class AnifaceClient(discord.Client):
    """A discord.py Client with an app-command tree, whose events go to `DiscordHandlers`."""

    def __init__(self, handlers: DiscordHandlers, *, guild_ids: Sequence[int] = (), message_content: bool = True,
                 sync_commands: bool = True) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning about it
        super().__init__(intents=intents(message_content), allowed_mentions=discord.AllowedMentions.none(),
                         chunk_guilds_at_startup=False, guild_ready_timeout=handlers.options.guild_ready_timeout,
                         max_messages=1000)
        self.handlers = handlers
        self.tree = app_commands.CommandTree(self)
        self.guild_ids = tuple(int(g) for g in guild_ids)
        self.sync_on_start = sync_commands
        handlers.register(self)

    async def setup_hook(self) -> None:
        if self.sync_on_start:
            await sync_commands(self)

    async def on_ready(self) -> None:
        log.info("Discord: connected as %s (%s) in %d server(s)", self.user, self.user.id if self.user else "?",
                 len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        await self.handlers.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.handlers.on_raw_message_edit(payload)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.handlers.on_raw_reaction_add(payload)


def build_client(core: Core, *, guild_ids: Sequence[int] = (), message_content: bool = True,
                 options: AdapterOptions | None = None, sync_commands: bool = True) -> AnifaceClient:
    """A client whose handlers translate Discord onto `core`'s use cases (not logged in yet).

    `guild_ids`: sync the commands to these servers only, where they appear at once (development);
    none: globally. `message_content=False`: do not ask for the privileged intent.
    """
    return AnifaceClient(DiscordHandlers(core, options), guild_ids=guild_ids, message_content=message_content,
                         sync_commands=sync_commands)


async def sync_commands(client: AnifaceClient) -> None:
    """Register the slash and context-menu commands: per server in development, else globally."""
    tree = client.tree
    try:
        if client.guild_ids:
            for guild_id in client.guild_ids:
                guild = discord.Object(guild_id)
                tree.copy_global_to(guild=guild)
                synced = await tree.sync(guild=guild)
                log.info("Discord: %d commands synced to server %s", len(synced), guild_id)
        else:
            synced = await tree.sync()
            log.info("Discord: %d commands synced globally (they may take a while to appear)", len(synced))
    except discord.Forbidden as error:  # the bot works without its commands: mentions and reactions
        log.warning("Discord: could not sync the commands (was the bot invited with the applications.commands "
                    "scope?): %s", error)
    except discord.HTTPException as error:
        log.warning("Discord: could not sync the commands: %s", error)


class DiscordBot:
    """One running Discord adapter: `start()`, then `stop()`; `aniface serve` holds it."""

    def __init__(self, core: Core, token: str, *, guild_ids: Sequence[int] = (), message_content: bool = True,
                 options: AdapterOptions | None = None) -> None:
        self.token = token
        self.client = build_client(core, guild_ids=guild_ids, message_content=message_content, options=options)
        self.handlers = self.client.handlers
        self._connection: asyncio.Task | None = None

    async def start(self) -> None:
        """Log in (a wrong token raises discord.LoginFailure here), sync the commands, start the gateway."""
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
        return "running"

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
