"""Words in one language: the gettext catalogs (bot/locales) and Babel's number formats.

`words(language)` hands out a `Words` per shipped language; `bot.wording` says everything through one.
Catalogs are gettext's `.mo` files, compiled from the `.po` files beside them and shipped compiled
(scripts/i18n.sh; tests/test_i18n_catalogs.py checks that they match). English is the source language:
its messages are the msgids themselves.
"""

from __future__ import annotations

import functools
import gettext
from pathlib import Path

from babel import Locale
from babel.numbers import format_decimal, format_percent

from bot.language import DEFAULT, SUPPORTED, supported

DOMAIN = "aniface"
LOCALES = Path(__file__).with_name("locales")


def N_(message: str) -> str:
    """Marks a message for extraction where it is declared; it is translated where it is said."""
    return message


class Words:
    """One language's messages and number formats."""

    def __init__(self, language: str, catalog: gettext.NullTranslations) -> None:
        self.language = language
        self.locale = Locale.parse(language)
        self._catalog = catalog

    def gettext(self, message: str, **values: object) -> str:
        """`message` in this language, its `{placeholders}` filled from `values`."""
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, count: int, **values: object) -> str:
        """The plural form this language uses for `count`; `{count}` is the number, formatted."""
        text = self._catalog.ngettext(singular, plural, count)
        return text.format(count=self.number(count), **values)

    def number(self, value: float, digits: int = 0) -> str:
        """A number as this language writes it (1,234.5 / 1 234,5 / 1.234,5)."""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, probability: float) -> str:
        """A probability as a whole percentage ("99 %" in Russian, "99%" in English); never "100%" short of
        certain, never "0%" above zero."""
        if 0.995 <= probability < 1:
            probability = 0.99
        elif 0 < probability < 0.01:
            return "<" + format_percent(0.01, locale=self.locale)
        return format_percent(probability, locale=self.locale)


def words(language: str | None = DEFAULT) -> Words:
    """The `Words` of a shipped language (a platform's tag is read with `bot.language.supported`; any other
    tag gets English)."""
    return _shipped(supported(language) or DEFAULT)


@functools.cache  # keyed by the shipped code only: a platform's tags are as many as people care to send
def _shipped(code: str) -> Words:
    if code == DEFAULT:
        return Words(code, gettext.NullTranslations())
    # opened by path: gettext.translation() would "normalise" zh_Hans through the C library's locale aliases
    with open(LOCALES / code / "LC_MESSAGES" / f"{DOMAIN}.mo", "rb") as file:
        return Words(code, gettext.GNUTranslations(file))


__all__ = ["DOMAIN", "LOCALES", "N_", "SUPPORTED", "Words", "words"]
