"""The message catalogs (bot/locales): every message of the sources is in the template, translated in every
shipped language with the same placeholders, and the compiled .mo files say what their .po files say."""

from __future__ import annotations

import gettext
import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from adapters.discord_bot import texts as discord_texts
from bot.i18n import DOMAIN, LOCALES, words
from bot.language import SUPPORTED

ROOT = Path(__file__).resolve().parents[1]
TRANSLATED = [code for code in SUPPORTED if code != "en"]


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name is not None}


def catalog(code: str):
    with (LOCALES / code / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as file:
        return read_po(file, locale=code)


def template_ids() -> set:
    with (LOCALES / f"{DOMAIN}.pot").open("rb") as file:
        return {message.id for message in read_po(file) if message.id}


def test_every_language_is_shipped():
    assert set(TRANSLATED) == {path.name for path in LOCALES.iterdir() if path.is_dir()}


def test_the_template_holds_every_message_the_sources_say():
    """A message added to the code without `scripts/i18n.sh extract` would reach people in English."""
    method_map = [("bot/**.py", "python"), ("adapters/**.py", "python"),
                  ("adapters/web/static/app.js", "javascript"),
                  ("adapters/web/static/index.html", "adapters.web.page:extract_html")]
    found = set()
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map, keywords={
            "_": None, "gettext": None, "ngettext": (1, 2), "N_": None}):
        found.add(message if isinstance(message, str) else tuple(message))
    assert found == template_ids()


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_has_a_translation_with_the_same_placeholders(code):
    translations = catalog(code)
    assert translations.num_plurals == {"ja": 1, "zh_Hans": 1, "ko": 1, "ru": 3}.get(code, translations.num_plurals)
    by_id = {message.id: message for message in translations if message.id}
    assert set(by_id) == template_ids(), "run scripts/i18n.sh extract"
    for msgid, message in by_id.items():
        assert not message.fuzzy, msgid
        sources = msgid if isinstance(msgid, tuple) else (msgid,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert len(strings) == (translations.num_plurals if isinstance(msgid, tuple) else 1), msgid
        for text in strings:
            assert text.strip(), (code, msgid)  # a separator (", ") may be punctuation alone ("、"), never empty
            assert text and placeholders(text) == placeholders(sources[-1]), (code, msgid, text)


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_compiled_catalog_matches_its_po(code):
    """The .mo files are shipped compiled (no build step): each must be what `pybabel compile` makes of its .po."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog(code))
    fresh = gettext.GNUTranslations(io.BytesIO(buffer.getvalue()))
    with (LOCALES / code / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as file:
        shipped = gettext.GNUTranslations(file)
    assert shipped._catalog == fresh._catalog, "run scripts/i18n.sh compile"  # noqa: SLF001


def test_russian_says_each_of_its_three_plural_forms():
    ru = words("ru")
    said = [ru.ngettext("I found {count} face:", "I found {count} faces:", n) for n in (1, 3, 5, 21, 11)]
    assert said == ["Я нашёл 1 лицо:", "Я нашёл 3 лица:", "Я нашёл 5 лиц:", "Я нашёл 21 лицо:", "Я нашёл 11 лиц:"]


def test_numbers_and_percentages_are_written_as_each_language_writes_them():
    assert [words(code).percent(0.4) for code in ("en", "ru", "es", "ja")] == ["40%", "40\xa0%", "40\xa0%", "40%"]
    assert words("ru").number(1234.5, 1) == "1\xa0234,5" and words("pt_BR").number(1234.5, 1) == "1.234,5"
    assert words("en").percent(0.996) == "99%" and words("ja").percent(0.001) == "<1%"


@pytest.mark.parametrize("code", TRANSLATED)
def test_discords_command_texts_fit_its_limits_in_every_language(code):
    w = words(code)
    for text in (*discord_texts.COMMANDS.values(), discord_texts.IDENTIFY_IMAGE, discord_texts.SETTINGS_MODE,
                 discord_texts.SETTINGS_THRESHOLD, discord_texts.SETTINGS_LANGUAGE, discord_texts.ALIAS_NAME,
                 discord_texts.ALIAS_OTHER):
        assert 1 <= len(w.gettext(text)) <= 100, (code, text)
    for menu in (discord_texts.IDENTIFY_MENU, discord_texts.CORRECT_MENU):
        assert 1 <= len(w.gettext(menu)) <= 32, (code, menu)


def test_telegrams_command_descriptions_fit_its_limit():
    from adapters.telegram.texts import ADMIN_COMMANDS, PRIVATE_COMMANDS, commands
    for code in SUPPORTED:
        for _, description in commands(words(code), ADMIN_COMMANDS + PRIVATE_COMMANDS):
            assert 1 <= len(description) <= 256 and not re.search(r"\{\w+\}", description)
