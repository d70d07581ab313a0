"""Resolving the names people type against the known characters.

Case, spacing, diacritics, full-width forms and name order do not matter ("kafu chino" and
"Chino  Kafū" are "Chino Kafu"); a close misspelling or a part of a name gets "did you mean ...?";
anything else is accepted as a new character once cleaned (length limit; no control, bidi or
zero-width characters).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum
from typing import Iterable

from recognizer.labels import MAX_NAME_LENGTH, NameRefused, clean_name, display_name, label_key


class NameStatus(str, Enum):
    KNOWN = "known"
    SUGGEST = "suggest"
    NEW = "new"
    INVALID = "invalid"


class NameProblem(str, Enum):
    """Why a name cannot be used; `bot.wording.name_problem` says it in the person's language."""

    EMPTY = "empty"            # nothing left once invisible characters and spacing are dropped
    TOO_LONG = "too_long"      # over MAX_NAME_LENGTH characters once cleaned
    NO_LETTERS = "no_letters"  # only separators and punctuation ("---", "・")


@dataclass(frozen=True)
class NameMatch:
    status: NameStatus
    name: str | None = None           # the known character's name, or the cleaned new name
    suggestions: tuple[str, ...] = ()
    problem: NameProblem | None = None  # why an INVALID name is refused
    length: int = 0                     # a TOO_LONG name's length, to say by how much


class NameBook:
    """Known characters by key; aliases point at a character's name."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names: dict[str, str] = {}
        for name in names:
            self.add(name)

    def __contains__(self, name: str) -> bool:
        return label_key(name) in self._names

    def __len__(self) -> int:
        return len(set(self._names.values()))

    def names(self) -> list[str]:
        return sorted(set(self._names.values()), key=str.casefold)

    def add(self, name: str, alias_of: str | None = None) -> str:
        """Register a name (or an alias of a registered name); returns the character's name."""
        key = label_key(name)
        if not key:
            raise ValueError("the name is empty")
        target = self._names.get(label_key(alias_of), alias_of) if alias_of else self._names.get(key, name)
        self._names.setdefault(key, target)
        return self._names[key]

    def lookup(self, name: str) -> str | None:
        return self._names.get(label_key(name))

    def resolve(self, text: str) -> NameMatch:
        try:
            cleaned = clean_name(text)
        except NameRefused as refusal:
            return NameMatch(NameStatus.INVALID, problem=NameProblem(refusal.kind), length=refusal.length)
        key = label_key(cleaned)
        if not key:
            return NameMatch(NameStatus.INVALID, problem=NameProblem.NO_LETTERS)
        if key in self._names:
            return NameMatch(NameStatus.KNOWN, self._names[key])
        suggestions = self._suggest(key)
        if suggestions:
            return NameMatch(NameStatus.SUGGEST, cleaned, suggestions)
        return NameMatch(NameStatus.NEW, display_name(cleaned))

    def _suggest(self, key: str) -> tuple[str, ...]:
        found: list[str] = []
        # a part of one name: "chino" -> "Chino Kafu"
        words = set(key.split())
        partial = {name for k, name in self._names.items() if words < set(k.split())}
        if len(partial) <= 3:
            found.extend(sorted(partial))
        for close in difflib.get_close_matches(key, list(self._names), n=3, cutoff=0.8):
            found.append(self._names[close])
        unique = list(dict.fromkeys(found))
        return tuple(unique[:3])


__all__ = ["MAX_NAME_LENGTH", "NameBook", "NameMatch", "NameProblem", "NameStatus"]
