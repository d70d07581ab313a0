"""People and chats as salted hashes: the database and exports never hold a raw user id.

The salt is a per-installation secret: the configured one (`Settings.secret`, from ANIFACE_SECRET or
the TOML file), else a random key created once in the data directory (`secret.key`, readable by its
owner only). This module reads no environment: the settings are loaded once, by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


SECRET_FILE = "secret.key"


class SecretError(ValueError):
    """The installation's secret file exists but cannot be used."""


def load_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """`configured` (Settings.secret), else the key in `data_dir/secret.key`, created on first use.

    Several processes may start together on a fresh data directory (the bot and `aniface export`):
    the key is written to a file of its own and linked into place, so exactly one key wins and
    nobody reads a half-written file.
    """
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    if path.exists():
        return _read_key(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    candidate = data_dir / f".{SECRET_FILE}.{secrets.token_hex(8)}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, key.hex().encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(candidate, path)  # fails if another process got there first
    except FileExistsError:
        return _read_key(path)
    finally:
        candidate.unlink()
    return key


def _read_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, ValueError) as error:
        raise SecretError(f"{path} is damaged (it should hold a hex key): {error}; restore it from a backup, "
                          "or delete it to start new pseudonyms (votes already stored stay under the old ones)"
                          ) from error
    if not key:
        raise SecretError(f"{path} is empty; restore it from a backup, or delete it to start new pseudonyms")
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
