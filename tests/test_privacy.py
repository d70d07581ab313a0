"""The per-installation secret behind every pseudonym: created once, shared by processes that race for it."""

from __future__ import annotations

import threading

import pytest

from bot.privacy import Hasher, SecretError, load_secret


@pytest.fixture(autouse=True)
def _no_configured_secret(monkeypatch):
    monkeypatch.delenv("ANIFACE_SECRET", raising=False)


def test_the_secret_is_created_once_private_and_kept(tmp_path):
    key = load_secret(tmp_path / "data")
    assert len(key) == 32
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_secret(tmp_path / "data") == key
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["secret.key"]  # no leftover candidates


def test_processes_starting_together_all_get_the_same_secret(tmp_path):
    starters = 8
    barrier = threading.Barrier(starters)
    keys: list[bytes] = []
    errors: list[Exception] = []

    def start() -> None:
        barrier.wait(timeout=10)
        try:
            keys.append(load_secret(tmp_path))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    for _ in range(20):  # fresh directory each round: the race is on creation
        keys.clear()
        tmp_path = tmp_path / "again"
        threads = [threading.Thread(target=start) for _ in range(starters)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert errors == [] and len(keys) == starters and len(set(keys)) == 1


def test_a_configured_secret_wins(tmp_path, monkeypatch):
    assert load_secret(tmp_path, "from the settings") == b"from the settings"
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize("content", ["", "not hex at all", "\xff\xfe"])
def test_a_damaged_secret_file_is_a_clear_error_and_is_left_alone(tmp_path, content):
    path = tmp_path / "secret.key"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(SecretError, match="secret.key"):
        load_secret(tmp_path)
    assert path.read_text(encoding="latin-1") == content


def test_pseudonyms_are_stable_per_platform_and_secret():
    hasher = Hasher(b"k")
    assert hasher("telegram", 5) == hasher("telegram", "5") != hasher("discord", 5)
    assert Hasher(b"other")("telegram", 5) != hasher("telegram", 5)
    assert len(hasher("telegram", 5)) == 32
    with pytest.raises(ValueError):
        Hasher(b"")
