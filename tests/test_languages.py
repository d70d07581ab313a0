"""Which language the bot speaks (bot/language.py), and what is stored for it (migration 0007: a chat's fixed
language; aliases and their gallery events), on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from bot import chat_settings, language
from bot.storage import events, migrate
from bot.storage.db import Database
from bot.storage.repository import Repository


@pytest.mark.parametrize("tag, shipped", [
    ("ja", "ja"), ("ja-JP", "ja"), ("pt-br", "pt_BR"), ("pt", "pt_BR"), ("zh-CN", "zh_Hans"), ("zh_Hans", "zh_Hans"),
    ("zh-TW", "zh_Hans"), ("es-419", "es"), ("es-ES", "es"), ("ru", "ru"), ("ko", "ko"), ("en-US", "en"),
    ("fr", None), ("", None), (None, None), ("ja;drop table", None), ("x" * 80, None)])
def test_a_platforms_tag_is_read_as_a_shipped_language(tag, shipped):
    assert language.supported(tag) == shipped


def test_the_chats_language_beats_the_persons_which_beats_the_default():
    assert language.choose("ja", "ru") == "ja"
    assert language.choose(None, "ru") == "ru"
    assert language.choose(None, "fr") == "en"
    assert language.choose(None, None, default="es") == "es"
    assert language.choose("ko", None) == "ko"


@pytest.mark.parametrize("header, shipped", [
    ("ja,en-US;q=0.8", "ja"), ("fr-FR,fr;q=0.9,pt-BR;q=0.8,en;q=0.5", "pt_BR"), ("en;q=0.2, ru;q=0.9", "ru"),
    ("fr, de", None), ("ja;q=0", None), ("", None), ("ko;q=abc, es", "es"), ("*", None)])
def test_the_browsers_accept_language_picks_its_best_shipped_language(header, shipped):
    assert language.from_accept_language(header) == shipped


def test_settings_words_fix_a_language_or_give_it_back():
    assert chat_settings.parse_words(["language", "ja"]).language == "ja"
    assert chat_settings.parse_words(["Language", "pt_BR"]).language == "pt_BR"
    assert chat_settings.parse_words(["language", "default"]).reset_language
    assert chat_settings.combine(None, None, "ko").language == "ko"
    assert chat_settings.combine("asked", None, "ru").answer_mode == "asked"


@pytest.fixture
def store(database_url):  # the storage fixture (tests/storage_fixtures.py), on each backend
    database = Database(database_url)
    migrate.upgrade(database.engine)
    try:
        yield Repository(database, None)
    finally:
        database.dispose()


def test_a_chats_language_is_stored_and_given_back(store):
    assert store.chat_settings("telegram", "-5").language is None
    saved = store.update_chat_settings("telegram", "-5", "h", None, None, False, "ja")
    assert saved.language == "ja" and store.chat_settings("telegram", "-5").language == "ja"
    assert store.chat_settings("telegram", "-6").language is None  # another chat: its own
    store.update_chat_settings("telegram", "-5", "h", "asked", None, False)  # other settings keep it
    assert store.chat_settings("telegram", "-5").language == "ja"
    store.update_chat_settings("telegram", "-5", "h", None, None, False, reset_language=True)
    assert store.chat_settings("telegram", "-5").language is None


def test_an_alias_is_stored_as_written_and_announced_to_every_process(store):
    store.register_labels(["yagami_kou"])
    newest, _ = store.recent_event_ids(10)
    added = store.add_alias("Kou Yagami", "八神コウ")  # the name in any order, as every name
    assert (added.name, added.taken_by) == ("Yagami Kou", None)
    assert store.add_alias("nobody at all", "誰か").name is None
    again = store.add_alias("Yagami Kou", "八神ｺｳ")  # the same alias, half-width: NFKC makes it the same
    assert again.taken_by == "Yagami Kou"
    [known] = store.register_labels([])
    assert known.aliases == ("八神コウ",)
    changes = store.changes(newest)
    assert changes.aliases == (("八神コウ", "Yagami Kou"),) and events.ALIAS == "alias"
    with store.votes() as votes:
        assert votes.character("八神コウ").name == "Yagami Kou"  # the key of "八神コウ" is itself
