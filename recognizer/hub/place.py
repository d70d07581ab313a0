"""Which hub, which cache, which token, online or not: from the environment, as every Hub user sets it.

Read when a model is fetched, not when `huggingface_hub` is imported (it reads some of these once, at import),
so a process that changes its environment, and the tests, get what the environment says now.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class HubPlace:
    endpoint: str       # HF_ENDPOINT: the Hub, a mirror or a self-hosted hub
    cache_dir: Path     # HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (the standard cache)
    token: str | None   # HF_TOKEN; None: huggingface_hub's own (a `hf auth login` token), if any
    offline: bool       # HF_HUB_OFFLINE: only what the cache holds

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "HubPlace":
        environ = os.environ if environ is None else environ
        home = Path(environ.get("HF_HOME") or Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                    / "huggingface").expanduser()
        cache = Path(environ.get("HF_HUB_CACHE") or home / "hub").expanduser()
        return cls(endpoint=(environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"), cache_dir=cache,
                   token=environ.get("HF_TOKEN") or None,
                   offline=environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE)
