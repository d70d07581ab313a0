"""What every Telegram handler needs: the adapter's options, and who a message is from."""

from __future__ import annotations

from dataclasses import dataclass, replace

from telegram import Message, ReplyParameters, User
from telegram.constants import ChatType, FileSizeLimit

from bot.messages import Person

PLATFORM = "telegram"


@dataclass
class AdapterOptions:
    """How the adapter behaves; the defaults are for production, tests shorten the waits."""

    album_wait: float = 1.5           # quiet time that closes an album
    ack_window: float = 4.0           # reaction acknowledgements in a chat within this window go in one message
    ack_lines: int = 8                # at most this many lines in one acknowledgement
    keyboard_faces: int = 5           # faces that get correction buttons
    chat_action_every: float = 4.5    # a chat action lasts 5 s: repeat it while working
    max_download_bytes: int | None = None  # None: 20 MB on Telegram's servers, no limit of its own in local mode
    upload_limit: int = FileSizeLimit.FILESIZE_UPLOAD      # 50 MB: what a bot may send (exports)
    photo_limit: int = FileSizeLimit.PHOTOSIZE_UPLOAD      # 10 MB: annotated pictures are fitted under it
    # network (see adapters.telegram.network)
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    write_timeout: float = 30.0       # uploads
    pool_timeout: float = 5.0
    rate_retries: int = 3             # 429s waited out per request
    overall_rate: float = 30.0        # Bot API calls a second, all chats together (every call counts)
    group_rate: float = 20.0          # messages a minute in one group (only calls that post count)
    network_retries: int = 2          # safe retries after a connection or server failure
    retry_delay: float = 1.0


def per_replica(options: AdapterOptions, replicas: int) -> AdapterOptions:
    """One replica's share of Telegram's flood limits: the limits count per bot, not per process, so N
    replicas that each sent at the full rate would send N times too much."""
    if replicas <= 1:
        return options
    # whole posts per replica: a share of 6.67 would still let three replicas send 21 in a minute
    return replace(options, overall_rate=options.overall_rate / replicas,
                   group_rate=float(max(1, int(options.group_rate // replicas))))


def person_of(message: Message, is_chat_admin: bool = False) -> Person:
    """Who sent a message; an anonymous group admin is the group itself (Telegram hides who it was)."""
    private = message.chat.type == ChatType.PRIVATE
    if message.sender_chat is not None:
        return Person(PLATFORM, str(message.sender_chat.id), is_chat_admin, private)
    user = message.from_user
    return Person(PLATFORM, str(user.id) if user else "0", is_chat_admin, private,
                  user.language_code if user else None)


def user_person(user: User) -> Person:
    return Person(PLATFORM, str(user.id), language=user.language_code)


def arguments(message: Message) -> str:
    """What follows the command, newlines kept (`context.args` would split on every blank)."""
    text = message.text or message.caption or ""
    return text.partition(" ")[2] if " " in text.split("\n", 1)[0] else text.partition("\n")[2]


def replying_to(message_id: int) -> ReplyParameters:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)

