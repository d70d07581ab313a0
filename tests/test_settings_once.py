"""Every command sees the same settings as `aniface serve`: loaded once, from flags, environment and TOML.

Before, `aniface db current` and `aniface export` read DATABASE_URL and the data folder themselves and
ignored --config / ANIFACE_CONFIG, so they showed and exported another database than the bot's.
"""

from __future__ import annotations

import os
import zipfile

import pytest

from adapters.cli import main
from bot.config import load_settings
from bot.privacy import Hasher, load_secret
from bot.storage.db import Database
from bot.storage.models import Character, Face, Prediction, Vote


def clear_settings(monkeypatch) -> None:
    for name in [k for k in os.environ if k.startswith(("ANIFACE_", "TELEGRAM_", "DISCORD_")) or k == "DATABASE_URL"]:
        monkeypatch.delenv(name)


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """A TOML file naming a database and a data folder; the environment's defaults point elsewhere."""
    clear_settings(monkeypatch)
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path / "elsewhere"))
    database = tmp_path / "from_toml.sqlite3"
    config = tmp_path / "aniface.toml"
    config.write_text(f'database_url = "sqlite:///{database}"\ndata_dir = "{tmp_path / "data"}"\n'
                      'secret = "the-toml-secret"\n', encoding="utf-8")
    return config, database


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 50)).save(buffer, "PNG")
    return buffer.getvalue()


def seed(url: str) -> None:
    import hashlib

    crop = _png()
    database = Database(url)
    try:
        with database.transaction() as session:
            character = Character(name="Chino Kafu", key="chino kafu", source="user")
            prediction = Prediction(platform="telegram", chat_id="1", message_id="1", sender_hash="x" * 32,
                                    image_sha256="0" * 64, width=10, height=10, model_version=None)
            face = Face(number=1, x=0, y=0, w=8, h=8, detection_score=1.0, crop_png=crop,
                        crop_sha256=hashlib.sha256(crop).hexdigest(), candidates=[], predicted_name=None)
            prediction.faces.append(face)
            session.add_all([character, prediction])
            session.flush()
            session.add(Vote(face=face, platform="telegram", user_hash="u" * 32, verdict="is",
                             character_id=character.id, via="command"))
    finally:
        database.dispose()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_db_current_shows_the_configured_database(configured, monkeypatch, capsys, how):
    config, database = configured
    if how == "environment":
        monkeypatch.setenv("ANIFACE_CONFIG", str(config))
        argv = ["db", "current"]
    else:
        argv = ["--config", str(config), "db", "current"]
    assert load_settings().database_url == f"sqlite:///{database}" or how == "flag"  # what serve would use
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"database: sqlite:///{database}"
    assert main(["db", "current", "--config", str(config)]) == 0  # after the action too
    assert capsys.readouterr().out.splitlines()[0] == f"database: sqlite:///{database}"


def test_export_reads_the_configured_database_and_secret(configured, monkeypatch, tmp_path, capsys):
    config, database = configured
    seed(f"sqlite:///{database}")
    monkeypatch.setenv("ANIFACE_CONFIG", str(config))
    out = tmp_path / "export.zip"
    assert main(["export", "--out", str(out)]) == 0, capsys.readouterr().err
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = archive.read("manifest.csv").decode()
    assert any(name.endswith(".png") for name in names)
    # chats are hashed with the configured secret, as the bot's own exports are
    assert Hasher(load_secret(tmp_path / "data", "the-toml-secret"))("telegram", "1") in manifest
    assert not (tmp_path / "elsewhere").exists()  # nothing read or created where the environment pointed
