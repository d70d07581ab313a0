"""Which language the bot speaks to someone: the rule, and reading the platforms' hints.

The rule is the core's, one place for every platform: a chat's fixed language (set by its admins with
`/settings language ja`) beats the person's own language (the hint their platform gives: Telegram's
`language_code`, Discord's locale, the browser's Accept-Language), which beats the default (English).
"""

from __future__ import annotations

import re

DEFAULT = "en"
#: the languages shipped (bot/locales/<code>/LC_MESSAGES/aniface.po), as gettext/Babel name them
SUPPORTED = ("en", "ja", "zh_Hans", "ko", "ru", "es", "pt_BR")
#: each language's name in itself, for the web page's picker and /settings
NATIVE_NAMES = {"en": "English", "ja": "日本語", "zh_Hans": "简体中文", "ko": "한국어", "ru": "Русский",
                "es": "Español", "pt_BR": "Português (Brasil)"}

# A platform's tag's first part is enough for every shipped language but Chinese and Portuguese, whose one
# shipped variant also serves the others (a zh-TW reader reads simplified Chinese better than English).
_BY_PRIMARY = {"en": "en", "ja": "ja", "zh": "zh_Hans", "ko": "ko", "ru": "ru", "es": "es", "pt": "pt_BR"}
_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")


def supported(tag: str | None) -> str | None:
    """A platform's language tag ("ja", "pt-br", "zh-CN", "zh_Hans", "es-419") as a shipped language,
    or None when none fits."""
    if not tag or not _TAG.match(tag.strip()):
        return None
    primary = re.split(r"[-_]", tag.strip().lower())[0]
    return _BY_PRIMARY.get(primary)


def choose(chat_language: str | None, person_hint: str | None, default: str = DEFAULT) -> str:
    """The chat's fixed language, else the person's, else `default`."""
    return supported(chat_language) or supported(person_hint) or supported(default) or DEFAULT


def from_accept_language(header: str | None) -> str | None:
    """The browser's best shipped language from an Accept-Language header ("ja,en-US;q=0.8"), or None."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):  # a header is short; a hostile one is cut
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([^;\s]*)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:  # a malformed weight: the tag is not believed
                continue
        if quality > 0:
            ranked.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(ranked):
        found = supported(tag)
        if found:
            return found
    return None
