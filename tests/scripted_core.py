"""A stand-in for `bot.core.Core` on the picture path, for the adapters' rendering tests.

The Telegram and Discord tests use it to check how a prepared `Reply` is sent (long texts, escaping,
busy answers) without a model or a database behind it.
"""

from __future__ import annotations

from bot.messages import ChatSettingsView, FaceSummary, Reply
from recognizer import DecodeLimits

OTHER_NAMES = ("Chino Kafu", "Hatsune Miku", "Rem", "Emilia")


class ScriptedCore:
    """Just enough of a Core for the picture path: it answers with a prepared Reply."""

    limits = DecodeLimits()

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sent: list[tuple[int, str]] = []

    async def chat_settings(self, platform, chat_id):
        return ChatSettingsView()

    async def identify(self, image):
        return self.reply

    async def reply_sent(self, prediction_id, platform, chat_id, message_id):
        self.sent.append((prediction_id, message_id))


def many_faces(count: int, first_name: str) -> tuple[FaceSummary, ...]:
    """`count` faces, each named `first_name` (a name the platform's markup must escape) with 4 runners-up."""
    names = (first_name, *OTHER_NAMES)
    candidates = tuple((name, 0.9 - 0.1 * i) for i, name in enumerate(names))
    return tuple(FaceSummary(1000 + n, n, (n, n, 10, 10), first_name, candidates) for n in range(1, count + 1))
