"""Where the benchmarks find the shared data and the locally built backbone weights."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ANIFACE_SHARED_DATA", REPO.parent / "shared" / "data"))
#: what ../shared/tools/backbones/build.sh writes
BUILT_WEIGHTS = Path.home() / ".cache" / "animebot-backbones" / "inception_v3_notop.weights.h5"


def default_weights() -> Path | None:
    """$ANIFACE_BACKBONE_WEIGHTS, else the weights build.sh built, when they are there."""
    if os.environ.get("ANIFACE_BACKBONE_WEIGHTS"):
        return Path(os.environ["ANIFACE_BACKBONE_WEIGHTS"])
    return BUILT_WEIGHTS if BUILT_WEIGHTS.is_file() else None
