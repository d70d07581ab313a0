"""A chat that gets a new id (a Telegram group that became a supergroup) keeps its settings: the storage
rule, on SQLite and PostgreSQL. The Telegram side (service messages, ChatMigrated) is in test_telegram.py."""

from __future__ import annotations

import threading

from bot.messages import ChatSettingsView
from bot.storage.repository import Repository

OLD, NEW = "-4001", "-1004001"


def _save(store: Repository, chat_id: str, mode: str, threshold: float | None = None,
          platform: str = "telegram") -> None:
    store.update_chat_settings(platform, chat_id, "admin-hash", mode, threshold, False)


def test_settings_follow_the_chat_to_its_new_id_once(database):
    store = Repository(database, None)
    _save(store, OLD, "asked", 0.4)
    _save(store, OLD, "asked", 0.25, platform="discord")  # the same id on another platform is another chat
    assert store.move_chat_settings("telegram", OLD, NEW) is True
    assert store.chat_settings("telegram", NEW) == ChatSettingsView("asked", 0.4)
    assert store.chat_settings("telegram", OLD) == ChatSettingsView()
    assert store.move_chat_settings("telegram", OLD, NEW) is False  # both ids announce the move: it moves once
    assert store.chat_settings("telegram", NEW) == ChatSettingsView("asked", 0.4)
    assert store.chat_settings("discord", OLD) == ChatSettingsView("asked", 0.25)
    assert store.chat_settings("discord", NEW) == ChatSettingsView()


def test_the_new_ids_own_settings_stay_and_the_old_ones_are_kept(database):
    store = Repository(database, None)
    _save(store, OLD, "asked", 0.4)
    _save(store, NEW, "all", 0.7)  # chosen in the supergroup, after the move
    assert store.move_chat_settings("telegram", OLD, NEW) is False
    assert store.chat_settings("telegram", NEW) == ChatSettingsView("all", 0.7)
    assert store.chat_settings("telegram", OLD) == ChatSettingsView("asked", 0.4)  # nothing lost


def test_nothing_to_move(database):
    store = Repository(database, None)
    assert store.move_chat_settings("telegram", OLD, NEW) is False
    assert store.move_chat_settings("telegram", OLD, OLD) is False
    assert store.chat_settings("telegram", NEW) == ChatSettingsView()


def test_two_processes_moving_at_once_move_it_once(database):
    """Both service messages, handled by two replicas at the same moment: one moves, the other finds
    nothing to move (never an error, never a lost row)."""
    store = Repository(database, None)
    _save(store, OLD, "asked", 0.4)
    start, results, errors = threading.Barrier(4), [], []

    def move() -> None:
        start.wait()
        try:
            results.append(store.move_chat_settings("telegram", OLD, NEW))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=move) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and sorted(results) == [False, False, False, True]
    assert store.chat_settings("telegram", NEW) == ChatSettingsView("asked", 0.4)
    assert store.chat_settings("telegram", OLD) == ChatSettingsView()
