"""From the core's plain-text replies to Discord messages: Markdown escaping, the 2,000-character limit,
the "Correct" buttons under an answer and the modals they open.

The buttons are `DynamicItem`s: their custom id carries the face (`aniface:fix:<face id>:<number>`,
number 0 for the only face of a picture), so a button under an answer sent before a restart still
works. Discord's limits are kept here, where the pieces are made: 2,000 characters of content, 5 rows
of 5 buttons, 80-character labels, 100-character custom ids, 45-character modal titles and labels.

Their words are said through the `Words` of the language the core chose: a button's label in the answer's
(`Reply.language`, `Ack.language`), chosen when it is sent and kept in the message (a rebuilt button keeps
the label Discord shows); a modal's in the language of the person who opened it (`CorePort.words_for`).
"""

from __future__ import annotations

import re
from typing import Awaitable, Callable, Sequence

import discord
from discord import ui

from bot.i18n import Words, words
from bot.messages import FaceSummary
from bot.ports import GUESSES, NAME_LIMIT

#: what the UI objects call: they own their behaviour, and know nothing of the handlers behind them
OnPress = Callable[[discord.Interaction, int, int], Awaitable[None]]          # (interaction, face id, number)
OnName = Callable[[discord.Interaction, int, str], Awaitable[None]]          # (interaction, face id, text)
OnCorrect = Callable[[discord.Interaction, int, str, str], Awaitable[None]]  # (interaction, message id, face, name)
OnError = Callable[[discord.Interaction, Exception], Awaitable[None]]

MESSAGE_LIMIT = 2000
BUTTON_LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
MODAL_TITLE_LIMIT = 45
FIELD_LABEL_LIMIT = 45
PLACEHOLDER_LIMIT = 100
NAME_EXAMPLE = "Chino Kafu"  # a character's name: never translated
BUTTONS_PER_ROW = 5
MAX_BUTTONS = 25

FIX_ID = re.compile(r"aniface:fix:(?P<face_id>[0-9]{1,19}):(?P<number>[0-9]{1,3})")


def escape(text: str) -> str:
    """Plain text for Discord's Markdown: shown as typed (names are people's input)."""
    return discord.utils.escape_markdown(text)  # masked links too: "[x](url)" -> "\\[x](url)"


def _cut(text: str, limit: int) -> tuple[str, str]:
    """A head of escaped `text` within `limit` characters that does not end inside an escape."""
    head = text[:limit]
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:  # a lone backslash would escape the first character of the next piece
        head = head[:-1]
    return head, text[len(head):]


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text`, escaped, in messages of at most `limit` characters, split at line ends where possible."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for line in (escape(line) for line in text.split("\n")):
        while True:
            extra = len(line) + (1 if current else 0)
            if used + extra <= limit:
                current.append(line)
                used += extra
                break
            if current:
                pieces.append("\n".join(current))
                current, used = [], 0
                continue
            head, line = _cut(line, limit)  # one line longer than a whole message
            pieces.append(head)
            if not line:
                break
    if current:
        pieces.append("\n".join(current))
    return [piece for piece in pieces if piece.strip()] or ["\u200b"]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def fix_label(w: Words, number: int) -> str:
    """The "Correct" button's label: "Correct 2" for face 2, "Correct this" for a picture's only face."""
    text = w.gettext("Correct {number}", number=number) if number else w.gettext("Correct this")
    return clip(text, BUTTON_LABEL_LIMIT)


def type_the_name(w: Words) -> str:
    return clip(w.gettext("Type the name"), BUTTON_LABEL_LIMIT)


def name_input(w: Words) -> ui.TextInput:
    """The name field of both modals: a name, or the number of one of the bot's guesses."""
    return ui.TextInput(label=clip(w.gettext("Name (or 1-{last}: one of my guesses)", last=GUESSES), FIELD_LABEL_LIMIT),
                        placeholder=clip(w.gettext("e.g. {example}", example=NAME_EXAMPLE), PLACEHOLDER_LIMIT),
                        min_length=1, max_length=NAME_LIMIT)


def fix_custom_id(face_id: int, number: int) -> str:
    custom_id = f"aniface:fix:{int(face_id)}:{int(number)}"
    if len(custom_id) > CUSTOM_ID_LIMIT:  # cannot happen for a 64-bit id; guards the contract
        raise ValueError(f"custom id over {CUSTOM_ID_LIMIT} characters: {custom_id!r}")
    return custom_id


def parse_fix(custom_id: str | None) -> tuple[int, int] | None:
    match = FIX_ID.fullmatch(custom_id or "")
    return (int(match["face_id"]), int(match["number"])) if match else None


class FixButton(ui.DynamicItem[ui.Button], template=FIX_ID):
    """"Correct 2" (or "Correct this") under an answer: opens a modal asking who face 2 is.

    A button may be pressed long after it was sent (after a restart too): discord.py rebuilds it from
    its custom id, so what a press does is a class attribute, `on_press`, bound by `fix_button()`."""

    on_press: OnPress | None = None

    def __init__(self, face_id: int, number: int, label: str | None = None) -> None:
        # the label is the sender's (in the answer's language); a rebuilt button gets the one Discord showed
        super().__init__(ui.Button(label=clip(label or fix_label(words(), number), BUTTON_LABEL_LIMIT),
                                   style=discord.ButtonStyle.secondary, emoji="\u270f\ufe0f",
                                   custom_id=fix_custom_id(face_id, number)))
        self.face_id = face_id
        self.number = number

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: ui.Button,
                             match: re.Match[str]) -> "FixButton":
        return cls(int(match["face_id"]), int(match["number"]), item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.on_press is None:
            raise RuntimeError("this FixButton class is not bound to a behaviour: use fix_button(on_press)")
        await type(self).on_press(interaction, self.face_id, self.number)  # type: ignore[misc]


def fix_button(on_press: OnPress) -> type[FixButton]:
    """A FixButton class whose presses call `on_press`; register it with `client.add_dynamic_items`."""

    class BoundFixButton(FixButton, template=FIX_ID):
        pass

    BoundFixButton.on_press = staticmethod(on_press)  # type: ignore[assignment]
    return BoundFixButton


def answer_view(faces: Sequence[FaceSummary], w: Words, max_faces: int = 10,
                button: type[FixButton] = FixButton) -> ui.View | None:
    """A "Correct" button per face (the first `max_faces`, at most 25): "Correct this" for a lone face;
    labelled in the answer's language (`w`)."""
    shown_faces = list(faces)[:min(max_faces, MAX_BUTTONS)]
    if not shown_faces:
        return None
    view = ui.View(timeout=None)
    several = len(faces) > 1
    for face in shown_faces:
        number = face.number if several else 0
        view.add_item(button(face.face_id, number, fix_label(w, number)))
    return view


def ask_view(face_id: int, w: Words, number: int = 0, button: type[FixButton] = FixButton) -> ui.View:
    """Under "who is it, then?": a button that opens the same modal as "Correct", in the question's language."""
    view = ui.View(timeout=None)
    view.add_item(button(face_id, number, type_the_name(w)))
    return view


class NameModal(ui.Modal):
    """Who is this face? A name, or the number of one of the bot's guesses; in the words `w` of the person
    who pressed the button."""

    name: ui.TextInput

    def __init__(self, face_id: int, w: Words, number: int = 0, *, on_name: OnName, on_error: OnError,
                 timeout: float | None = 900) -> None:
        title = w.gettext("Who is face {number}?", number=number) if number else w.gettext("Who is this?")
        super().__init__(title=clip(title, MODAL_TITLE_LIMIT), timeout=timeout)
        self.face_id, self.number = face_id, number
        self._on_name, self._on_error = on_name, on_error
        self.name = name_input(w)
        self.add_item(self.name)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._on_name(interaction, self.face_id, self.name.value)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await self._on_error(interaction, error)


class CorrectModal(ui.Modal):
    """"Correct this" on an answer: which face (when it has several) and who it is; in the words `w` of the
    person who picked it."""

    def __init__(self, message_id: int, w: Words, *, on_correct: OnCorrect, on_error: OnError,
                 timeout: float | None = 900) -> None:
        super().__init__(title=clip(w.gettext("Correct my answer"), MODAL_TITLE_LIMIT), timeout=timeout)
        self.message_id = message_id
        self._on_correct, self._on_error = on_correct, on_error
        self.face = ui.TextInput(label=clip(w.gettext("Face number (if the picture has several)"), FIELD_LABEL_LIMIT),
                                 required=False, max_length=3,
                                 placeholder=clip(w.gettext("e.g. {example}", example=2), PLACEHOLDER_LIMIT))
        self.name = name_input(w)
        self.add_item(self.face)
        self.add_item(self.name)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._on_correct(interaction, self.message_id, self.face.value, self.name.value)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await self._on_error(interaction, error)

