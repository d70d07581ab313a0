"""What counts as a correction, on every platform alike: `/wrong [n] [name]`, a name typed back, a
bare number (one of the bot's guesses), reactions on the bot's answer, and the limits of a name.

Adapters hand the person's raw words to the core (`Core.wrong_command`, `Core.answer_question`,
`Core.name_face`), which reads them here; no adapter interprets them itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.messages import Verdict
from recognizer.labels import MAX_NAME_LENGTH
from recognizer.recognizer import TOP_K

#: the longest name a person may give (a form field's limit on every platform)
NAME_LIMIT = MAX_NAME_LENGTH
#: how many guesses the bot shows per face: a bare number 1..GUESSES picks one of them
GUESSES = TOP_K

_FACE_NUMBER = re.compile(r"^\s*#?(\d{1,3})[.):]?\s+(.+)$", re.DOTALL)
_BARE_NUMBER = re.compile(r"^[0-9]{1,6}$")
KEYCAPS = {f"{n}\ufe0f\u20e3": n for n in range(1, 6)} | {f"{n}\u20e3": n for n in range(1, 6)}
RIGHT_EMOJI = {"\U0001f44d", "\u2705", "\u2714\ufe0f", "\u2714", "\U0001f44c", "\u2611\ufe0f"}
WRONG_EMOJI = {"\U0001f44e", "\u274c", "\u2716\ufe0f", "\u2716", "\u274e"}


@dataclass(frozen=True)
class WrongCommand:
    face_number: int | None
    name: str | None  # None: "/wrong" alone, the bot asks for the name


def parse_wrong(arguments: str) -> WrongCommand:
    """`"2 Chino Kafu"` -> face 2, "Chino Kafu"; `"Chino Kafu"` -> the only face; `""` -> ask."""
    text = arguments.strip()
    if not text:
        return WrongCommand(None, None)
    match = _FACE_NUMBER.match(text)
    if match:
        return WrongCommand(int(match.group(1)), match.group(2).strip())
    if _BARE_NUMBER.match(text):  # ASCII digits only: "²" passes isdigit() but is no number int() reads
        return WrongCommand(int(text), None)
    return WrongCommand(None, text)


@dataclass(frozen=True)
class Answer:
    """What a person typed to say who a face is: one of the bot's guesses (`candidate`), or a name."""

    name: str | None = None
    candidate: int | None = None


_GUESS = re.compile(r"^\s*#?([0-9]{1,2})[.)]?\s*$")


def read_answer(text: str) -> Answer:
    """`"2"` (or "#2", "2.") -> guess 2; anything else -> that name. The same on every platform:
    a typed answer to "Who is it, then?", a form's name field, the name in `/wrong 1 2`."""
    match = _GUESS.match(text or "")
    if match:
        return Answer(candidate=int(match.group(1)))
    return Answer(name=(text or "").strip())


@dataclass(frozen=True)
class ReactionMeaning:
    verdict: Verdict
    candidate: int | None = None


def reaction_meaning(emoji: str) -> ReactionMeaning | None:
    """1..5 keycap: "it is candidate n"; thumbs up / check: right; thumbs down / cross: wrong."""
    if emoji in KEYCAPS:
        return ReactionMeaning(Verdict.IS, KEYCAPS[emoji])
    if emoji in RIGHT_EMOJI:
        return ReactionMeaning(Verdict.RIGHT)
    if emoji in WRONG_EMOJI:
        return ReactionMeaning(Verdict.WRONG)
    return None
