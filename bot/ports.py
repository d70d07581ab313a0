"""The core's port: everything an adapter may ask of the core, and nothing else.

Adapters (Telegram, Discord, the web, the command line) type their core as `CorePort` and only
translate between their platform and these calls; every rule (what counts as a correction, who is an
admin, whether a picture is answered, the limits of a name, the wording) is the core's.
`bot.core.Core` implements it.
"""

from __future__ import annotations

from datetime import datetime
from typing import AsyncContextManager, Callable, Protocol, Sequence, runtime_checkable

from typing import TYPE_CHECKING

from bot.corrections import GUESSES, NAME_LIMIT
from bot.inbound import InboundRoutes
from bot.metrics import Metrics
from bot.i18n import Words
from bot.messages import (Ack, AlbumClaim, AlbumKey, AlbumPart, ChatSettingsView, IncomingImage, NotAllowed, Person,
                          Reply, SettingsChange, Status)

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = ["AdapterStarter", "CorePort", "GUESSES", "NAME_LIMIT", "NotAllowed", "Running", "StartError"]


class StartError(Exception):
    """An adapter could not start; the message says why and what to check, for the operator."""


@runtime_checkable
class CorePort(Protocol):
    # --- pictures -----------------------------------------------------------------------------
    async def identify(self, image: IncomingImage) -> Reply | None:
        """Settings check, fetch, recognition, storage and the worded reply, in one call (None: not answered)."""

    async def identify_regions(self, image: IncomingImage,
                               boxes: Sequence[tuple[int, int, int, int]]) -> Reply: ...

    async def reply_sent(self, prediction_id: int, platform: str, chat_id: str, message_id: str) -> None:
        """The adapter sent a message carrying this prediction: corrections on it now find it."""

    async def annotated_picture(self, prediction_id: int, platform: str, chat_id: str) -> bytes | None:
        """The annotated picture of an answer identified with `IncomingImage.keep_annotated`, for its chat
        only (any replica has it: it is stored)."""

    @property
    def max_image_bytes(self) -> int:
        """The largest picture the core reads (adapters refuse larger downloads up front)."""

    # --- corrections, as the person typed or did them ---------------------------------------------
    async def wrong_command(self, person: Person, chat_id: str, bot_message_id: str, arguments: str,
                            via: str = "command") -> Ack: ...

    async def correct_typed(self, person: Person, chat_id: str, bot_message_id: str, face_number: int | None,
                            text: str, via: str = "command") -> Ack: ...

    async def react(self, person: Person, chat_id: str, bot_message_id: str, emoji: str) -> Ack | None: ...

    async def press(self, person: Person, chat_id: str, face_id: int, choice: int | None,
                    via: str = "button") -> Ack: ...

    async def name_face(self, person: Person, face_id: int, name: str, via: str = "web",
                        chat_id: str | None = None) -> Ack: ...

    async def answer_question(self, person: Person, chat_id: str, text: str) -> Ack | None: ...

    # --- settings, admins, exports ---------------------------------------------------------------
    async def chat_settings(self, platform: str, chat_id: str) -> ChatSettingsView: ...

    async def words_for(self, person: Person, chat_id: str | None = None) -> Words:
        """The words to say anything to `person` in a chat: the chat's fixed language, else the person's
        (`Person.language`, the platform's hint), else the default (`bot.language.choose`)."""

    async def add_alias(self, person: Person, chat_id: str | None, text: str) -> Ack:
        """`<name> = <other name>`: another name for a known character (bot and chat admins)."""

    async def chat_moved(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """The platform gave a chat a new id: its settings move with it (the new id's own, if any, stay)."""

    async def first_delivery(self, platform: str, update_id: int) -> bool:
        """Record a pushed update before handling it: True the first time any process sees it, False for a
        redelivery (answer it, do not handle it again)."""

    async def album_part(self, platform: str, chat_id: str, album_id: str, part: AlbumPart) -> AlbumClaim | None:
        """Store one picture of an album (parts reach any replica); the claim when the caller is to answer
        the album, None when another part's process answers it."""

    async def album_complete(self, claim: AlbumClaim, quiet_s: float) -> list[AlbumPart]:
        """The claimed album's parts, from every process, once none has come for `quiet_s` seconds."""

    def answer_albums_with(self, platform: str, quiet_s: float,
                           answer: Callable[[AlbumKey, list[AlbumPart]], None]) -> Callable[[], None]:
        """Take over `platform`'s albums whose process died before answering them: each is handed to `answer`
        with every part, as `album_complete` would have handed them to the claim. Returns what ends it."""

    #: HTTP routes this process's adapters serve through the web adapter's server (bot.inbound)
    inbound: InboundRoutes

    #: what the core counted (bot.metrics); adapters only serve `metrics.exposition()`
    metrics: Metrics

    async def update_settings(self, person: Person, chat_id: str, change: SettingsChange | None = None, *,
                              answer_mode: str | None = None, unknown_threshold: float | None = None,
                              reset_threshold: bool = False) -> Ack: ...

    def export_scope(self, person: Person, chat_id: str | None) -> str | None:
        """None: everything (a bot admin); a chat id (its admins); raises NotAllowed otherwise."""

    def export_archive(self, platform: str, scope: str | None, *, since: datetime | None = None,
                       min_votes: int = 1) -> AsyncContextManager: ...

    def known_characters(self) -> list[str]: ...

    def status(self) -> Status: ...

    async def readiness(self) -> str | None:
        """None when ready for work (the database writable), else why not."""
        ...

    async def recent_corrections(self, limit: int = 50) -> list[dict]: ...

    async def face_crop(self, face_id: int) -> bytes | None: ...

    # --- life -------------------------------------------------------------------------------------
    async def start(self) -> None: ...

    async def warm_up(self) -> float:
        """Compile and trace what the first picture would, before any platform connects; the seconds it took."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Running(Protocol):
    """A started adapter. `stop()` stops taking new work and finishes what is in flight."""

    def describe(self) -> str:
        """One line for the start-up message: "running", or where it listens."""

    async def stop(self) -> None: ...

    # Optional: `def stop_accepting(self) -> None`, called on every adapter at once when the process is
    # told to stop, before any `stop()`: each refuses new work from then on (the web's health checks say
    # 503), so a load balancer drains the whole process while the adapters finish one after the other.


class AdapterStarter(Protocol):
    """Every adapter's entry point (group `aniface.adapters` in pyproject.toml): start inside the running
    event loop and return what is running, or None when this adapter is not configured (no token).
    Raises StartError with an operator's message when it cannot start."""

    async def __call__(self, core: CorePort, settings: "Settings") -> Running | None: ...
