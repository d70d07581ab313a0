"""Character names: one canonical key per character, however a person spells it.

Case, spacing, underscores, diacritics, full-width forms and name order do not matter:
"kafu chino", "Chino  Kafū" and "chino_kafu" share the key "chino kafu".
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_LENGTH = 64
# control, format (bidi overrides, zero-width), surrogate, private-use and unassigned characters
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_SEPARATORS = re.compile(r"[\s_\-.·・,]+")


class NameRefused(ValueError):
    """A name that cannot be stored, and why (`kind`): a chat bot words it in its reader's language."""

    EMPTY = "empty"
    TOO_LONG = "too_long"

    def __init__(self, kind: str, length: int = 0) -> None:
        super().__init__("the name is empty" if kind == self.EMPTY
                         else f"the name is too long ({length} characters, limit {MAX_NAME_LENGTH})")
        self.kind, self.length = kind, length


def clean_name(name: str) -> str:
    """A name fit to store and show: NFKC-normalised, invisible characters dropped, spacing collapsed.

    Raises NameRefused (a ValueError) for a name that is empty after cleaning or longer than MAX_NAME_LENGTH.
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    text = " ".join(text.replace("_", " ").split())
    if not text:
        raise NameRefused(NameRefused.EMPTY)
    if len(text) > MAX_NAME_LENGTH:
        raise NameRefused(NameRefused.TOO_LONG, len(text))
    return text


def label_key(name: str) -> str:
    """The comparison key of a name: casefolded, without diacritics, words sorted."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = [word for word in _SEPARATORS.split(stripped) if word]
    return " ".join(sorted(words))


def readable_name(label: str) -> str:
    """`display_name`, or the label as it is when it has nothing left to show once cleaned."""
    try:
        return display_name(label)
    except ValueError:
        return label


def display_name(label: str) -> str:
    """How a name reads to a person: an all-lowercase one ("kafu_chino") is capitalised ("Kafu Chino");
    one with capitals of its own is kept as written."""
    cleaned = clean_name(label)
    if cleaned != cleaned.lower():
        return cleaned
    return " ".join(word[:1].upper() + word[1:] for word in cleaned.split())
