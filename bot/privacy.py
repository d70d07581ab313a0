"""People and chats as salted hashes: the database and exports never hold a raw user id.

The salt is a per-installation secret: `ANIFACE_SECRET`, else a random key created once in the data
directory (`secret.key`, readable by its owner only).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_secret(data_dir: Path) -> bytes:
    configured = os.environ.get("ANIFACE_SECRET")
    if configured:
        return configured.encode("utf-8")
    path = data_dir / "secret.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, key.hex().encode())
    finally:
        os.close(descriptor)
    return key


class Hasher:
    """`hasher("telegram", 12345)` -> a stable 32-hex-digit pseudonym for that platform id."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the hashing secret must not be empty")
        self._secret = secret

    def __call__(self, platform: str, platform_id: str | int) -> str:
        message = f"{platform}\x1f{platform_id}".encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]
