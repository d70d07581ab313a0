"""The one way tests build a real Core: the composition root's own `build_core`, from a loaded Settings.

So a test's core has the object graph the running bot has (its own database connections, migrated at
start, the hasher from the settings' secret, the worker pool the settings size). Only the recognizer
comes from the test, because loading a backbone is slow: tests share the tiny one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator

from adapters.cli.runtime import build_core
from bot.config import Settings, load_settings
from bot.core import Core
from recognizer import Recognizer, read_model
from recognizer.backbone import Backbone
from recognizer.gallery import Gallery
from recognizer.model import BACKBONE_WEIGHTS_FILE
from tests.model_factory import TINY_SAVED_SPEC

TEST_SECRET = "test-secret"


def core_settings(database_url: str, data_dir: Path, *, admins: dict[str, set[str]] | None = None,
                  **overrides: Any) -> Settings:
    """Settings as `aniface` loads them, from no environment and no file: only what the test says."""
    return load_settings({}, None, data_dir=data_dir, database_url=database_url,
                         secret=overrides.pop("secret", TEST_SECRET),
                         admins={platform: frozenset(ids) for platform, ids in (admins or {}).items()},
                         **overrides)


def tiny_backbone(tiny_model) -> Backbone:  # noqa: ANN001 (tests.model_factory's TinyModel)
    return Backbone(TINY_SAVED_SPEC, tiny_model.path / BACKBONE_WEIGHTS_FILE)


def tiny_recognizer(backbone: Backbone | None, model_path: Path | None = None) -> Recognizer:
    """The tiny model (or, without `model_path`, the backbone alone) with an empty gallery of its own."""
    if backbone is None:
        return Recognizer()
    return Recognizer(read_model(model_path) if model_path else None, backbone=backbone, gallery=Gallery())


def make_core(database_url: str, data_dir: Path, recognizer: Recognizer, **settings: Any) -> Core:
    """A Core, not started, built as `aniface serve` builds it. `settings`: Settings fields (admins, workers,
    queue_size, secret...)."""
    return build_core(core_settings(database_url, data_dir, **settings), recognizer)


def running_core(folder: Path, tiny_model, admins: dict[str, set[str]]) -> Iterator[Core]:  # noqa: ANN001
    """A started Core on an SQLite file in `folder` with the tiny saved model; for a module-scoped fixture."""
    recognizer = tiny_recognizer(tiny_backbone(tiny_model), tiny_model.path)
    core = make_core(f"sqlite:///{folder / 'aniface.sqlite3'}", folder, recognizer, admins=admins)
    asyncio.run(core.start())
    yield core
    asyncio.run(core.close())
