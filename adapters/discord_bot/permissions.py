"""What the bot may do in a channel, asked of discord.py's cache before Discord is asked to do it.

Discord counts refused requests (401, 403, 429): more than 10,000 in 10 minutes gets the bot's address
banned for a while by Cloudflare. In a server that answers every picture, a channel where the bot may not
write would cost a refused "typing" and a refused message for every picture posted there. So the bot looks
at its permissions first (`channel.permissions_for(guild.me)`, computed from the roles and overwrites the
gateway keeps up to date) and stays quiet where it cannot answer: one log line per channel per while, not
one per picture. A 403 that comes all the same (a cache out of date) is not retried: the channel is left
alone for a while.

Interactions need none of this: Discord always lets an application answer its interactions, with files.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import discord

log = logging.getLogger(__name__)

#: (discord.py's name, what Discord's settings call it)
Need = tuple[str, str]
VIEW: Need = ("view_channel", "View Channel")
SEND: Need = ("send_messages", "Send Messages")
HISTORY: Need = ("read_message_history", "Read Message History")  # a reply refers to a message: Discord asks for it
ATTACH: Need = ("attach_files", "Attach Files")

WRITE: tuple[Need, ...] = (VIEW, SEND, HISTORY)       # a text reply
ANSWER: tuple[Need, ...] = WRITE + (ATTACH,)          # the annotated picture, in reply
TYPING: tuple[Need, ...] = (VIEW, SEND)
FETCH: tuple[Need, ...] = (VIEW, HISTORY)             # fetching the message a reply refers to


def channel_permissions(channel: object) -> discord.Permissions | None:
    """The bot's permissions in a server's channel; None in a private chat, or where the cache cannot tell
    (a channel or the bot's member not cached): then the request is tried."""
    guild = getattr(channel, "guild", None)
    if guild is None or isinstance(channel, discord.PartialMessageable):
        return None
    me = guild.me
    if me is None:
        return None
    try:
        return channel.permissions_for(me)  # type: ignore[attr-defined]
    except (AttributeError, discord.ClientException):
        return None


def interaction_permissions(interaction: discord.Interaction) -> discord.Permissions | None:
    """The bot's own permissions in the channel of an interaction (not the interaction's answer's, which
    always include Attach Files); None in a private chat."""
    if interaction.guild is None:
        return None
    channel = interaction.guild.get_channel_or_thread(interaction.channel_id or 0)
    found = channel_permissions(channel) if channel is not None else None
    return found if found is not None else interaction.app_permissions


def missing(permissions: discord.Permissions | None, needs: Sequence[Need]) -> list[str]:
    """The names of the permissions `needs` that `permissions` lacks, as a server admin sees them."""
    if permissions is None:
        return []
    return [shown for attribute, shown in needs if not getattr(permissions, attribute)]


class ChannelGate:
    """Says whether the bot may do something in a channel; logs a refusal once per channel per `quiet_for`
    seconds, and remembers a 403 that came all the same for as long, so that it is not retried."""

    def __init__(self, quiet_for: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_for = quiet_for
        self.clock = clock
        self._logged: dict[int, float] = {}
        self._refused: dict[int, float] = {}
        self._told: dict[int, float] = {}

    def lacking(self, channel: object, needs: Sequence[Need]) -> list[str]:
        """What the bot lacks for `needs` in `channel` (nothing where it cannot tell); a channel that
        refused the bot recently lacks what it refused."""
        channel_id = getattr(channel, "id", None)
        refused_at = self._refused.get(channel_id) if channel_id is not None else None
        if refused_at is not None:
            if self.clock() - refused_at < self.quiet_for:
                return ["a permission Discord said was missing"]
            del self._refused[channel_id]
        return missing(channel_permissions(channel), needs)

    def allows(self, channel: object, needs: Sequence[Need], doing: str) -> bool:
        """Whether the bot may do `doing` in `channel`; when not, one log line per channel per while."""
        lacks = self.lacking(channel, needs)
        if lacks:
            self._log_once(channel, f"not {doing} in {_where(channel)}: missing {', '.join(lacks)}")
        return not lacks

    def refused(self, channel: object, error: discord.HTTPException) -> None:
        """Discord answered 403 in this channel: leave it alone for a while (no retry per picture)."""
        channel_id = getattr(channel, "id", None)
        if channel_id is None:
            return
        self._refused[channel_id] = self.clock()
        self._log_once(channel, f"Discord refused a request in {_where(channel)} ({error.status} {error.text or ''}); "
                                f"nothing more is sent there for {self.quiet_for / 60:.0f} min")

    def worth_telling(self, channel_id: int) -> bool:
        """Whether people in this channel were not told of a missing permission in a while (now they are)."""
        return self._first_in_while(self._told, channel_id)

    def _log_once(self, channel: object, text: str) -> None:
        if self._first_in_while(self._logged, getattr(channel, "id", 0)):
            log.warning("Discord: %s", text)

    def _first_in_while(self, seen: dict[int, float], channel_id: int) -> bool:
        now = self.clock()
        last = seen.get(channel_id)
        if last is not None and now - last < self.quiet_for:
            return False
        seen[channel_id] = now
        if len(seen) > 10_000:  # forget the oldest: a bot in many servers must not grow without end
            for stale in sorted(seen, key=seen.__getitem__)[:5_000]:
                del seen[stale]
        return True


def _where(channel: object) -> str:
    guild = getattr(channel, "guild", None)
    name = getattr(channel, "name", None)
    shown = f"#{name} ({getattr(channel, 'id', '?')})" if name else f"channel {getattr(channel, 'id', '?')}"
    return f"{shown} of server {guild.name} ({guild.id})" if guild is not None else shown
