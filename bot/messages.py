"""The core's own small types: what adapters hand in and what they get back.

Platform ids are strings (Telegram's and Discord's are numbers, the web's are tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import AsyncContextManager, Awaitable, Callable

from recognizer.errors import ImageRejected


@dataclass(frozen=True)
class Person:
    """Who is asking, as the adapter knows them."""

    platform: str
    user_id: str
    is_chat_admin: bool = False  # as the platform reports it, for this chat (its admins, Manage Server)
    in_private: bool = False     # writing in their own one-to-one chat with the bot
    language: str | None = None  # the platform's hint of their language ("ja", "pt-BR"); the core decides


class NotAllowed(PermissionError):
    """The person may not do this (not an admin)."""


class FetchRefused(Exception):
    """An adapter's `IncomingImage.fetch` will not download the picture (too large, gone...). `kind` says
    why (the core words it in the person's language: `bot.wording.refusal_reason`), or `cause`, the
    recognizer's own refusal (`FileTooLarge`); `user_message` is the English, for logs."""

    NO_PICTURE = "no_picture"
    DOWNLOAD_FAILED = "download_failed"
    NOT_HOSTED = "not_hosted"          # a link to a picture the platform does not host
    TOO_LARGE = "too_large"            # over what the platform lets a bot download (`limit_bytes`)

    def __init__(self, user_message: str, *, kind: str = NO_PICTURE, cause: Exception | None = None,
                 limit_bytes: int | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.kind, self.cause, self.limit_bytes = kind, cause, limit_bytes


class BoxRejected(ImageRejected):
    """Boxes a person drew that cannot be looked at: none, or one too small or outside the picture of
    `size` (width, height)."""

    def __init__(self, user_message: str, size: tuple[int, int] | None = None) -> None:
        super().__init__(user_message)
        self.size = size


async def _no_fetch() -> bytes:
    raise FetchRefused("there is no picture to read")


@dataclass(frozen=True)
class IncomingImage:
    """A picture someone posted. The bytes are `data`, or `fetch()` downloads them: the core calls it
    only once it has decided to answer. `working()`, when given, is entered while the core works on
    an answer (the adapter shows a "working" sign: a reaction, "typing...")."""

    platform: str
    chat_id: str
    message_id: str
    sender: Person
    data: bytes | None = None
    asked: bool = False      # an explicit request (/identify, a mention, a private chat)
    is_private: bool = False  # a one-to-one chat with the bot
    fetch: Callable[[], Awaitable[bytes]] = _no_fetch
    working: Callable[[], AsyncContextManager[object]] | None = None
    keep_annotated: bool = False  # store the annotated picture, for `CorePort.annotated_picture` (the web)
    shows_faces: bool = False  # the adapter shows each face itself (the web's cards): no contact sheet

    async def read(self) -> bytes:
        return self.data if self.data is not None else await self.fetch()


class ReplyKind(str, Enum):
    FACES = "faces"        # an answer naming faces
    NO_FACE = "no_face"
    REFUSED = "refused"    # unreadable, too large...
    BUSY = "busy"
    UNAVAILABLE = "unavailable"  # recognition cannot run now (the backbone's model server does not answer)


@dataclass(frozen=True)
class FaceSummary:
    face_id: int
    number: int
    box: tuple[int, int, int, int]
    name: str | None
    candidates: tuple[tuple[str, float], ...]  # (name, probability), best first
    detection_score: float = 1.0               # the detector's likelihood (1.0 for a drawn box)
    guessed: bool = False                      # no face was found: the likeliest place for one, as a guess


@dataclass(frozen=True)
class Reply:
    """What to send back. `text` is plain text: the adapter escapes it and applies its length limits."""

    kind: ReplyKind
    text: str
    prediction_id: int | None = None
    annotated_png: bytes | None = None
    crops_png: tuple[bytes, ...] = ()
    faces: tuple[FaceSummary, ...] = ()
    size: tuple[int, int] | None = None   # (width, height) of the decoded picture, in its boxes' pixels
    sheet_png: bytes | None = None        # the annotated picture with every face shown large, when the core chose it
    language: str = "en"                  # the language `text` is in (bot/language.py), for what adapters add

    @property
    def picture_png(self) -> bytes | None:
        """The one picture a chat sends: the contact sheet when the core made one, else the annotated picture."""
        return self.sheet_png or self.annotated_png


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
    via: str = "command"       # "command", "reaction", "button", "reply", "web"


class AckReason(str, Enum):
    """Why the core answered a correction or a setting the way it did: adapters decide on this, never on text."""

    NOTED = "noted"                  # a vote stored (a name, a guess, a confirmation)
    ASK_NAME = "ask_name"            # "wrong" stored; the bot asks the person for the name
    SUGGEST = "suggest"              # "did you mean ...?": nothing stored yet
    NOT_AN_ANSWER = "not_an_answer"  # not in reply to one of the bot's answers (or not this chat's)
    WHICH_FACE = "which_face"        # the answer has several faces: say which
    NO_SUCH_FACE = "no_such_face"
    NO_SUCH_GUESS = "no_such_guess"
    BAD_NAME = "bad_name"            # a name that cannot be used (empty, too long)
    NOT_ALLOWED = "not_allowed"      # not an admin
    SAVED = "saved"                  # settings saved
    BAD_SETTING = "bad_setting"      # a setting that cannot be used
    STORAGE_UNAVAILABLE = "storage_unavailable"  # the database cannot be written (disk full, read-only): nothing stored


@dataclass(frozen=True)
class Ack:
    """The core's answer to a correction or a setting: a short text, whether it took effect, and why."""

    ok: bool
    text: str
    suggestions: tuple[str, ...] = ()
    asks_for_name: bool = False   # the bot asked the person to type a name (after "wrong")
    face_id: int | None = None
    reason: AckReason = AckReason.NOTED
    language: str = "en"          # the language `text` is in, for what adapters add (a placeholder, a button)

    @property
    def wants_answer(self) -> bool:
        """The bot waits for this person to type something back (a name, or a name again)."""
        return self.asks_for_name or bool(self.suggestions)

    @property
    def quiet(self) -> bool:
        """Nothing to say in the chat: a reaction or a reply on a message that is not an answer."""
        return self.reason == AckReason.NOT_AN_ANSWER


class AnswerMode(str, Enum):
    ALL = "all"        # every picture
    ASKED = "asked"    # only when asked (a command, a mention, a private chat)


@dataclass
class ChatSettingsView:
    answer_mode: str = AnswerMode.ALL.value  # an AnswerMode value
    unknown_threshold: float | None = None   # None: the model's own
    extra: dict = field(default_factory=dict)
    language: str | None = None              # the chat's fixed language (bot/language.py); None: each person's


@dataclass(frozen=True)
class SettingsChange:
    """What a person asked to change, read from their words by `bot.chat_settings.parse`."""

    answer_mode: str | None = None
    unknown_threshold: float | None = None
    reset_threshold: bool = False
    language: str | None = None        # a language tag as typed ("ja"); the core checks it
    reset_language: bool = False       # back to each person's own language


@dataclass(frozen=True)
class Status:
    """What a health check reports."""

    model_version: str | None
    can_name: bool
    known_characters: int
    loop_lag_s: float | None = None         # the event loop's worst lag since start (None: not measured)
    recent_loop_lag_s: float | None = None  # ... over the last 5 minutes
    applied_event_id: int = 0  # the newest gallery event this process has applied (bot/following.py)
    model_source: str | None = None    # the hub reference the model came from (None: a folder, or no model)
    model_revision: str | None = None  # ... and the commit it was fetched at


@dataclass(frozen=True)
class AlbumKey:
    """An album (a Telegram media group) in a chat."""

    platform: str
    chat_id: str
    album_id: str


@dataclass(frozen=True)
class AlbumPart:
    """One picture of an album, as the adapter serialised its message (`payload`), handed back to it."""

    part_id: str   # the message's id
    payload: str
    asked: bool    # addressed to the bot (a mention, a command, a private chat)


@dataclass(frozen=True)
class AlbumClaim:
    """The right to answer an album, given to the adapter whose part opened it (bot/albums.py)."""

    key: AlbumKey
    token: str
