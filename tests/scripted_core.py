"""A stand-in for `bot.core.Core` on the picture path, for the adapters' rendering tests.

The Telegram and Discord tests use it to check how a prepared `Reply` is sent (long texts, escaping,
busy answers) without a model or a database behind it. It plays the core's part of the port the
way the core does: it shows the adapter's working sign and fetches the picture before answering.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Callable

from bot import language
from bot.albums import Albums
from bot.i18n import Words, words
from bot.messages import AlbumClaim, AlbumKey, AlbumPart, FaceSummary, IncomingImage, Person, Reply
from bot.storage.albums import AlbumStore
from bot.storage.db import Database
from recognizer import DecodeLimits

OTHER_NAMES = ("Chino Kafu", "Hatsune Miku", "Rem", "Emilia")


class ScriptedCore:
    """Just enough of a `bot.ports.CorePort` for the picture path: it answers with a prepared Reply."""

    max_image_bytes: int = DecodeLimits().max_bytes

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sent: list[tuple[int, str]] = []
        self.moves: list[tuple[str, str, str]] = []
        self._albums: Albums | None = None

    async def identify(self, image: IncomingImage) -> Reply | None:
        working = image.working() if image.working is not None else contextlib.nullcontext()
        async with working:
            await image.read()
            return self.reply

    async def reply_sent(self, prediction_id: int, platform: str, chat_id: str, message_id: str) -> None:
        self.sent.append((prediction_id, message_id))

    async def chat_moved(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        self.moves.append((platform, old_chat_id, new_chat_id))
        return True

    async def album_part(self, platform: str, chat_id: str, album_id: str, part: AlbumPart) -> AlbumClaim | None:
        return await self._album_rule().add(platform, chat_id, album_id, part)

    async def album_complete(self, claim: AlbumClaim, quiet_s: float) -> list[AlbumPart]:
        return await self._album_rule().complete(claim, quiet_s)

    def answer_albums_with(self, platform: str, quiet_s: float, answer: Callable[[AlbumKey, list[AlbumPart]], None]) -> Callable[[], None]:
        return self._album_rule().answer_with(platform, quiet_s, answer)

    def _album_rule(self) -> Albums:
        """The core's own album rule on a SQLite file of its own, made at the first album."""
        if self._albums is None:
            folder = Path(tempfile.mkdtemp(prefix="scripted-core-"))
            self._albums = Albums(AlbumStore(Database(f"sqlite:///{folder / 'albums.sqlite3'}")))
        return self._albums

    async def words_for(self, person: Person, chat_id: str | None = None) -> Words:
        return words(language.choose(None, person.language))  # the core's rule, with no chat settings

    async def start(self) -> None:
        pass

    async def warm_up(self) -> float:
        return 0.0

    async def close(self) -> None:
        pass


def many_faces(count: int, first_name: str) -> tuple[FaceSummary, ...]:
    """`count` faces, each named `first_name` (a name the platform's markup must escape) with 4 runners-up."""
    names = (first_name, *OTHER_NAMES)
    candidates = tuple((name, 0.9 - 0.1 * i) for i, name in enumerate(names))
    return tuple(FaceSummary(1000 + n, n, (n, n, 10, 10), first_name, candidates) for n in range(1, count + 1))
