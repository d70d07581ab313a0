"""The core's own small types: what adapters hand in and what they get back.

Platform ids are strings (Telegram's and Discord's are numbers, the web's are tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Person:
    """Who is asking, as the adapter knows them."""

    platform: str
    user_id: str
    is_chat_admin: bool = False  # as the platform reports it, for this chat


@dataclass(frozen=True)
class IncomingImage:
    platform: str
    chat_id: str
    message_id: str
    sender: Person
    data: bytes
    asked: bool = False      # an explicit request (/identify, a mention, a private chat)
    is_private: bool = False  # a one-to-one chat with the bot


class ReplyKind(str, Enum):
    FACES = "faces"        # an answer naming faces
    NO_FACE = "no_face"
    REFUSED = "refused"    # unreadable, too large...
    BUSY = "busy"


@dataclass(frozen=True)
class FaceSummary:
    face_id: int
    number: int
    box: tuple[int, int, int, int]
    name: str | None
    candidates: tuple[tuple[str, float], ...]  # (name, probability), best first
    detection_score: float = 1.0               # the detector's likelihood (1.0 for a drawn box)


@dataclass(frozen=True)
class Reply:
    """What to send back. `text` is plain text: the adapter escapes it and applies its length limits."""

    kind: ReplyKind
    text: str
    prediction_id: int | None = None
    annotated_png: bytes | None = None
    crops_png: tuple[bytes, ...] = ()
    faces: tuple[FaceSummary, ...] = ()


class Verdict(str, Enum):
    IS = "is"          # the face is this character
    RIGHT = "right"    # the bot's guess is right
    WRONG = "wrong"    # the bot's guess is wrong; name unknown yet


@dataclass(frozen=True)
class Correction:
    """A person saying what a face is, about a message the bot sent.

    Name it (`name`), pick a candidate (`candidate`, 1-based), or give a verdict on the bot's guess.
    `face_number` None means "the only face" (asked back when there are several).
    """

    person: Person
    chat_id: str
    bot_message_id: str
    verdict: Verdict
    face_number: int | None = None
    name: str | None = None
    candidate: int | None = None
    via: str = "command"       # "command", "reaction", "button", "web"


@dataclass(frozen=True)
class Ack:
    """The core's answer to a correction or a setting: a short text, and whether it took effect."""

    ok: bool
    text: str
    suggestions: tuple[str, ...] = ()
    asks_for_name: bool = False   # the bot asked the person to type a name (after "wrong")
    face_id: int | None = None


@dataclass
class ChatSettingsView:
    answer_mode: str = "all"               # "all" or "asked"
    unknown_threshold: float | None = None  # None: the model's own
    extra: dict = field(default_factory=dict)
