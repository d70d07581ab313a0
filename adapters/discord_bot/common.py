"""What every Discord handler needs: the adapter's options, whose chat and which person an event is, and
how a reply refers to its message."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.messages import Person

PLATFORM = "discord"
WRONG_COMMAND = "/wrong"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # what a bot may attach in a server without boosts, and in DMs


@dataclass
class AdapterOptions:
    """How the adapter behaves; the defaults are for production, tests shorten the waits."""

    ack_window: float = 4.0           # reaction acknowledgements in a channel within this window go in one message
    ack_lines: int = 8                # at most this many lines in one acknowledgement
    button_faces: int = 10            # faces that get a "Correct" button (Discord allows 25 buttons)
    images_per_message: int = 4       # pictures of one message that are answered
    typing_every: float = 8.0         # "is typing..." lasts 10 s: repeat it while working
    max_download_bytes: int | None = None   # None: the recognizer's own limit (25 MB)
    download_timeout: float = 30.0
    media_base: str | None = None     # Discord's CDN and media proxy reached here instead (a test server)
    guild_ready_timeout: float = 2.0  # discord.py's wait for the servers after READY
    drain_timeout: float = 60.0       # how long stopping waits for the jobs in flight
    seen_messages: int = 2048         # message ids remembered, so that an edit adding an embed is answered once
    refusal_quiet_for: float = 600.0  # a channel the bot may not write in: logged, and a 403 not retried, this often


def chat_key(guild_id: int | None, channel_id: int) -> str:
    """The core's chat: the server, or the private channel."""
    return str(guild_id) if guild_id else str(channel_id)


def person_of(user: discord.abc.User | discord.Object, is_chat_admin: bool = False,
              in_private: bool = False, locale: discord.Locale | str | None = None) -> Person:
    return Person(PLATFORM, str(user.id), is_chat_admin, in_private, str(locale) if locale else None)


def interaction_person(interaction: discord.Interaction) -> Person:
    """Who used a command, a button or a menu, with what Discord says of their rights here, and their
    client's language (`interaction.locale`)."""
    return person_of(interaction.user, manages_chat(interaction), interaction.guild_id is None, interaction.locale)


def message_person(message: discord.Message, in_private: bool = False) -> Person:
    """Who wrote a message. Discord tells a message's author's language to nobody: the server's preferred
    locale is the hint (none in a private channel)."""
    guild = message.guild
    return person_of(message.author, in_private=in_private, locale=guild.preferred_locale if guild else None)


def source_key(message_id: int, index: int = 1, trigger_id: int | None = None) -> str:
    """The core's `message_id` of a picture: the message holding it, its place in the message when it
    is not the first, and the message or interaction that asked when it was asked for afterwards (a
    picture may be identified more than once; each identification is its own prediction)."""
    key = str(message_id) if index == 1 else f"{message_id}.{index}"
    return key if trigger_id is None else f"{key}@{trigger_id}"


def manages_chat(interaction: discord.Interaction) -> bool:
    """Manage Server (or Administrator) in a server, as Discord computed it for this interaction (a
    private chat is the core's rule: `Person.in_private`)."""
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    return bool(permissions.manage_guild or permissions.administrator)


def is_wrong_command(text: str) -> bool:
    head = text.strip().split(maxsplit=1)[0].lower() if text.strip() else ""
    return head == WRONG_COMMAND


def chat_of(interaction: discord.Interaction) -> str:
    """The core's chat of an interaction."""
    return chat_key(interaction.guild_id, interaction.channel_id or 0)


REPLY_PING = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
QUIET = discord.AllowedMentions.none()


def reference_to(target: discord.Message | discord.PartialMessage | None) -> discord.MessageReference | None:
    """A reply to `target` that is still sent when `target` was deleted meanwhile."""
    return None if target is None else target.to_reference(fail_if_not_exists=False)


def message_upload_limit(message: discord.Message) -> int:
    guild = message.guild
    return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT


def interaction_upload_limit(interaction: discord.Interaction) -> int:
    """What this interaction may attach, as Discord said (discord.py 2.6+), else the common limit."""
    return getattr(interaction, "filesize_limit", None) or DEFAULT_UPLOAD_LIMIT

