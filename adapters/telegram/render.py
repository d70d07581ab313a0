"""From the core's plain-text replies to Telegram messages: HTML, length limits, keyboards.

Telegram counts lengths in UTF-16 code units of the text after entity parsing, so the plain text is
split first (each piece within the limit) and each piece escaped afterwards: escaping adds markup,
never visible characters, and no entity spans two pieces.
"""

from __future__ import annotations

import html
import re
from typing import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, User
from telegram.constants import CallbackQueryLimit, InlineKeyboardButtonLimit, MessageLimit

from bot.messages import FaceSummary
from bot.i18n import Words, words
from bot.wording import shown

CAPTION_LIMIT = MessageLimit.CAPTION_LENGTH          # 1024
TEXT_LIMIT = MessageLimit.MAX_TEXT_LENGTH            # 4096
TOAST_LIMIT = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH  # 200: answerCallbackQuery's text
CALLBACK_DATA_LIMIT = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64 bytes
BUTTON_LABEL_CHARS = 28   # longer labels are cut on the phone anyway
BUTTONS_PER_ROW = 3

_PRESS = re.compile(r"^p:(\d{1,19}):(\d)$")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Plain text for parse_mode=HTML."""
    return html.escape(text, quote=False)


def mention(user: User) -> str:
    """An HTML mention of a user that notifies them (and counts for ForceReply's `selective`)."""
    return f'<a href="tg://user?id={int(user.id)}">{escape(user.first_name or "you")}</a>'


def _cut(line: str, limit: int) -> tuple[str, str]:
    """The longest head of `line` within `limit` UTF-16 units (never splitting a surrogate pair)."""
    units, end = 0, 0
    for end, character in enumerate(line):
        units += 2 if ord(character) > 0xFFFF else 1
        if units > limit:
            return line[:end], line[end:]
    return line, ""


def split_text(text: str, first_limit: int = CAPTION_LIMIT, rest_limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces at line ends: the first within `first_limit`, the others within `rest_limit`."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0

    def limit() -> int:
        return first_limit if not pieces else rest_limit

    def flush() -> None:
        nonlocal current, used
        if current:
            pieces.append("\n".join(current))
        current, used = [], 0

    for line in text.split("\n"):
        while True:
            extra = utf16_length(line) + (1 if current else 0)
            if used + extra <= limit():
                current.append(line)
                used += extra
                break
            if current:
                flush()
                continue
            head, line = _cut(line, limit())  # one line longer than a whole message
            current.append(head)
            flush()
            if not line:
                break
    flush()
    return pieces or [""]


def caption_and_rest(text: str) -> tuple[str, list[str]]:
    """A caption within Telegram's caption limit, and what does not fit, as text messages."""
    pieces = split_text(text, CAPTION_LIMIT, TEXT_LIMIT)
    return pieces[0], pieces[1:]


def toast(text: str) -> str:
    """A callback query's answer: at most 200 characters."""
    if utf16_length(text) <= TOAST_LIMIT:
        return text
    head, _ = _cut(text, TOAST_LIMIT - 1)
    return head.rstrip() + "\u2026"


def _label(text: str) -> str:
    return text if len(text) <= BUTTON_LABEL_CHARS else text[:BUTTON_LABEL_CHARS - 1].rstrip() + "\u2026"


def press_data(face_id: int, choice: int | None) -> str:
    """Callback data of a correction button: `p:<face id>:<candidate 1..9, or 0 for none of these>`."""
    data = f"p:{int(face_id)}:{0 if choice is None else int(choice)}"
    if len(data.encode()) > CALLBACK_DATA_LIMIT:  # cannot happen for a 64-bit id; guards the contract
        raise ValueError(f"callback data over {CALLBACK_DATA_LIMIT} bytes: {data!r}")
    return data


def parse_press(data: str | None) -> tuple[int, int | None] | None:
    """(face id, candidate or None for "none of these"), or None when the data is not ours."""
    match = _PRESS.match(data or "")
    if not match:
        return None
    choice = int(match.group(2))
    return int(match.group(1)), (choice or None)


def keyboard(faces: Sequence[FaceSummary], max_faces: int = 5, w: Words | None = None) -> InlineKeyboardMarkup | None:
    """Buttons under an answer: each face's candidates, then "none of these" (which asks for the name).

    With several faces every label starts with the face's number. Only the first `max_faces` faces
    get buttons (the caption says how to correct the others with /wrong).
    """
    w = w or words()
    rows: list[list[InlineKeyboardButton]] = []
    several = len(faces) > 1
    for face in list(faces)[:max_faces]:
        prefix = f"{face.number}: " if several else ""
        cells = [InlineKeyboardButton(_label(prefix + shown(name)), callback_data=press_data(face.face_id, index))
                 for index, (name, _) in enumerate(face.candidates[:9], start=1)]
        none = w.gettext("None of these") if cells else w.gettext("Name this face")
        cells.append(InlineKeyboardButton(_label(prefix + none), callback_data=press_data(face.face_id, None)))
        rows.extend(cells[start:start + BUTTONS_PER_ROW] for start in range(0, len(cells), BUTTONS_PER_ROW))
    return InlineKeyboardMarkup(rows) if rows else None
